"""Colour facts of a video: FFmpeg's names for the range, matrix, primaries and transfer codes, and HDR10
metadata read from frame side data.

PyAV exposes these properties as the integer codes of libavutil's `AVColorRange`, `AVColorSpace`,
`AVColorPrimaries` and `AVColorTransferCharacteristic`. The tables below map the codes to FFmpeg's own
names (the strings `ffprobe` prints) and back.
"""

from __future__ import annotations

import struct

import av
from av.sidedata.sidedata import Type as SideDataType

RANGE_NAMES = {1: "tv", 2: "pc"}
SPACE_NAMES = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    14: "ictcp",
}
PRIMARIES_NAMES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
TRANSFER_NAMES = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    11: "iec61966-2-4",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})

# Values of the scale filter's in_color_matrix/out_color_matrix options for each colour space name.
SCALE_MATRIX = {
    "bt709": "bt709",
    "fcc": "fcc",
    "bt470bg": "bt601",
    "smpte170m": "bt601",
    "smpte240m": "smpte240m",
    "bt2020nc": "bt2020",
    "bt2020c": "bt2020",
}

_NAME_TABLES = {
    "range": RANGE_NAMES,
    "space": SPACE_NAMES,
    "primaries": PRIMARIES_NAMES,
    "transfer": TRANSFER_NAMES,
}


def code_name(kind: str, code: int | None) -> str | None:
    """Return FFmpeg's name for a colour code of `kind` ("range", "space", "primaries", "transfer").

    Unspecified and unknown codes return None.
    """
    if code is None:
        return None
    return _NAME_TABLES[kind].get(int(code))


def name_code(kind: str, name: str | None) -> int | None:
    """Return the libavutil code for an FFmpeg colour name, or None for a missing or unknown name."""
    if name is None:
        return None
    for code, known in _NAME_TABLES[kind].items():
        if known == name:
            return code
    return None


def pixel_format_bit_depth(pix_fmt: str) -> int:
    """Return the bits per sample of a pixel format: 8 for yuv420p, 10 for yuv420p10le."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.has_palette or not fmt.components:
        return 8
    return max(component.bits for component in fmt.components)


def pixel_format_has_alpha(pix_fmt: str) -> bool:
    """Return True when the pixel format carries alpha; palette formats count, because GIF uses them."""
    fmt = av.VideoFormat(pix_fmt)
    return fmt.has_palette or any(component.is_alpha for component in fmt.components)


def is_full_range(pix_fmt: str, color_range: str | None) -> bool:
    """Return True when the samples use the full 0-255 range: `yuvj*` formats, RGB formats or a "pc" tag."""
    if pix_fmt.startswith("yuvj") or color_range == "pc":
        return True
    return av.VideoFormat(pix_fmt).is_rgb or pix_fmt in ("pal8", "gray", "gray10le", "gray12le", "gray16le")


def decode_matrix(color_space: str | None, height: int) -> str:
    """Return the scale filter matrix used to turn this source's YUV into RGB.

    An untagged source gets the matrix players assume for its size: BT.709 from 720 lines up, else BT.601.
    """
    if color_space in SCALE_MATRIX:
        return SCALE_MATRIX[color_space]
    return "bt709" if height >= 720 else "bt601"


def is_hdr_transfer(color_trc: str | None) -> bool:
    """Return True for the PQ (SMPTE ST 2084) and HLG (ARIB STD-B67) transfer functions."""
    return color_trc in HDR_TRANSFERS


# Units of x265's master-display option (SMPTE ST 2086): chromaticity in 0.00002, luminance in 0.0001 cd/m2.
_CHROMATICITY_UNITS = 50000
_LUMINANCE_UNITS = 10000


def mastering_display(frame: av.VideoFrame) -> str | None:
    """Return a frame's mastering display metadata as x265's "G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)", or None.

    The side data is libavutil's AVMasteringDisplayMetadata: 10 rationals (R, G, B primaries and the white
    point as x,y pairs, then minimum and maximum luminance) as pairs of int32, then two int32 flags.
    """
    data = _side_data(frame, SideDataType.MASTERING_DISPLAY_METADATA)
    if data is None or len(data) < 88:
        return None
    values = struct.unpack_from("<20i2i", data)
    rationals = [values[i] / values[i + 1] if values[i + 1] else 0.0 for i in range(0, 20, 2)]
    has_primaries, has_luminance = values[20], values[21]
    if not (has_primaries and has_luminance):
        return None
    red, green, blue, white = (rationals[i : i + 2] for i in range(0, 8, 2))
    min_luminance, max_luminance = rationals[8], rationals[9]

    def point(pair: list[float]) -> str:
        return f"({round(pair[0] * _CHROMATICITY_UNITS)},{round(pair[1] * _CHROMATICITY_UNITS)})"

    return (
        f"G{point(green)}B{point(blue)}R{point(red)}WP{point(white)}"
        f"L({round(max_luminance * _LUMINANCE_UNITS)},{round(min_luminance * _LUMINANCE_UNITS)})"
    )


def content_light_level(frame: av.VideoFrame) -> str | None:
    """Return a frame's content light level as x265's max-cll "MaxCLL,MaxFALL" in cd/m2, or None."""
    data = _side_data(frame, SideDataType.CONTENT_LIGHT_LEVEL)
    if data is None or len(data) < 8:
        return None
    max_cll, max_fall = struct.unpack_from("<2I", data)
    return f"{max_cll},{max_fall}"


def _side_data(frame: av.VideoFrame, kind) -> bytes | None:
    for entry in frame.side_data or ():
        if entry.type == kind:
            return bytes(entry)
    return None
