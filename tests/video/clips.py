"""Generate small test videos with PyAV, with a frame index that can be read back from the pixels.

Each frame carries its index as `INDEX_BITS` vertical bars across the picture: white for a 1 bit, black for
0, least significant bit on the left. A test can read the index of any decoded frame back, also after
scaling and lossy coding. Other test packages import `make_clip` and `read_frame_index` from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.subtitles.subtitle import SubtitleSet

INDEX_BITS = 8
PATTERNS = ("index", "noise", "gradient")
_CONTAINER_BY_SUFFIX = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".avi": "avi", ".webm": "webm"}


def index_pattern(index: int, width: int, height: int) -> np.ndarray:
    """Return an HxWx3 uint8 RGB picture with `index` coded as vertical bars."""
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"index {index} does not fit in {INDEX_BITS} bits")
    picture = np.zeros((height, width, 3), dtype=np.uint8)
    for bit in range(INDEX_BITS):
        if index >> bit & 1:
            left, right = bit * width // INDEX_BITS, (bit + 1) * width // INDEX_BITS
            picture[:, left:right] = 255
    return picture


def read_frame_index(picture: np.ndarray) -> int:
    """Read the index from an HxWx3 RGB picture made by `index_pattern` (any size, 8 or 16 bits)."""
    height, width = picture.shape[:2]
    full_scale = 65535 if picture.dtype == np.uint16 else 255
    row = picture[height // 2].astype(np.float64).mean(axis=1)
    index = 0
    for bit in range(INDEX_BITS):
        centre = int((bit + 0.5) * width / INDEX_BITS)
        if row[centre] > full_scale / 2:
            index |= 1 << bit
    return index


def make_clip(
    path: str | Path,
    *,
    frames: int = 25,
    size: tuple[int, int] = (64, 48),
    fps: Fraction = Fraction(25),
    time_base: Fraction | None = None,
    vfr_pts: Sequence[int] | None = None,
    rotation: int | None = None,
    audio: Sequence[tuple[str, int, float, float]] = (),
    subtitles: Sequence[tuple[str, Sequence[tuple[float, float, str]]]] = (),
    pix_fmt: str = "yuv420p",
    color_range: str | None = None,
    color_space: str | None = None,
    codec: str = "libx264",
    interlaced: bool = False,
    x265_params: str | None = None,
    pattern: str = "index",
) -> Path:
    """Write a clip and return its path; the container follows the file suffix.

    `fps` sets the constant rate; `vfr_pts` instead gives every frame's pts in `time_base` units (which then
    defaults to 1/1000). `rotation` is the clockwise display rotation in degrees. `audio` contains
    (codec, sample_rate, seconds, start_seconds) per stream: a 440 Hz sine starting at `start_seconds`.
    `subtitles` contains (codec, [(start_s, end_s, text), ...]) per stream. `color_range` is "tv" or "pc";
    `color_space` is an FFmpeg matrix name such as "bt709" or "bt470bg". `interlaced` codes libx264 frames
    as top-field-first interlaced. `x265_params` adds options for libx265 (HDR10 metadata, for example).
    `pattern` is "index" (the frame index as bars, up to 256 frames), "noise" (seeded random pixels, hard to
    compress) or "gradient" (a moving gradient: any frame count, small files).
    """
    path = Path(path)
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; expected one of {', '.join(PATTERNS)}")
    if vfr_pts is not None and len(vfr_pts) != frames:
        raise ValueError(f"vfr_pts has {len(vfr_pts)} entries for {frames} frames")
    time_base = time_base or (Fraction(1, 1000) if vfr_pts is not None else 1 / Fraction(fps))
    container_format = _CONTAINER_BY_SUFFIX.get(path.suffix)
    with av.open(str(path), "w", format=container_format) as container:
        video = _add_video(
            container, codec, size, fps, time_base, pix_fmt, color_range, color_space, rotation,
        )
        if interlaced:
            video.options = {**video.options, "x264-params": "tff=1"}
        if x265_params:
            video.options = {**video.options, "x265-params": f"log-level=error:{x265_params}"}
        audio_streams = [_add_audio(container, *spec) for spec in audio]
        subtitle_streams = [_add_subtitle(container, codec_name) for codec_name, _ in subtitles]
        _write_video(container, video, frames, size, time_base, vfr_pts, pattern, pix_fmt)
        for stream, spec in zip(audio_streams, audio, strict=True):
            _write_audio(container, stream, *spec)
        for stream, (_, cues) in zip(subtitle_streams, subtitles, strict=True):
            _write_subtitles(container, stream, cues)
    return path


def _add_video(container, codec, size, fps, time_base, pix_fmt, color_range, color_space, rotation):
    stream = container.add_stream(codec, rate=Fraction(fps))
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    if codec in ("libx264", "libx265"):
        stream.options = {"preset": "ultrafast", "crf": "10"}
        if codec == "libx265":
            stream.options["x265-params"] = "log-level=error"
    if color_range is not None:
        stream.codec_context.color_range = {"tv": 1, "pc": 2}[color_range]
    if color_space is not None:
        matrix_codes = {"bt709": 1, "bt470bg": 5, "smpte170m": 6, "bt2020nc": 9}
        stream.codec_context.colorspace = matrix_codes[color_space]
    if rotation:
        stream.set_display_rotation(-rotation)
    return stream


def gradient_pattern(index: int, width: int, height: int) -> np.ndarray:
    """Return an HxWx3 uint8 RGB picture of a gradient that moves to the right from one index to the next."""
    picture = np.zeros((height, width, 3), dtype=np.uint8)
    picture[..., 0] = (np.arange(width) * 4 + index * 10) % 256
    picture[..., 1] = (np.arange(height)[:, None] * 5) % 256
    return picture


def _write_video(container, stream, frames, size, time_base, vfr_pts, pattern, pix_fmt):
    width, height = size
    rng = np.random.default_rng(0)
    for index in range(frames):
        if pattern == "index":
            picture = index_pattern(index, width, height)
        elif pattern == "gradient":
            picture = gradient_pattern(index, width, height)
        else:
            picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame = frame.reformat(format=pix_fmt, dst_color_range=stream.codec_context.color_range or None)
        frame.pts = vfr_pts[index] if vfr_pts is not None else index
        frame.time_base = time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _add_audio(container, codec: str, sample_rate: int, seconds: float, start: float):
    stream = container.add_stream(codec, rate=sample_rate)
    stream.codec_context.layout = "stereo"
    stream.time_base = Fraction(1, sample_rate)
    return stream


def _write_audio(container, stream, codec: str, sample_rate: int, seconds: float, start: float) -> None:
    ctx = stream.codec_context
    frame_size = ctx.frame_size or 1024
    resampler = av.AudioResampler(
        format=ctx.format, layout=ctx.layout, rate=ctx.sample_rate, frame_size=ctx.frame_size or None,
    )
    total = int(round(seconds * sample_rate))
    first_sample = int(round(start * sample_rate))
    written = 0
    while written < total:
        count = min(frame_size, total - written)
        times = (np.arange(written, written + count) / sample_rate).astype(np.float32)
        tone = (0.25 * np.sin(2 * math.pi * 440 * times)).astype(np.float32)
        planar = np.stack([tone, tone])
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        frame.sample_rate = sample_rate
        frame.pts = first_sample + written
        frame.time_base = Fraction(1, sample_rate)
        for resampled in resampler.resample(frame):
            container.mux(stream.encode(resampled))
        written += count
    for resampled in resampler.resample(None):
        container.mux(stream.encode(resampled))
    container.mux(stream.encode(None))


# A minimal ASS script header; FFmpeg's text subtitle encoders (ass, srt, mov_text) need one to open.
ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n"
    b"[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    b"BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
    b"Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def _add_subtitle(container, codec: str):
    stream = container.add_stream(codec)
    stream.time_base = Fraction(1, 1000)
    stream.codec_context.time_base = Fraction(1, 1000)
    stream.codec_context.subtitle_header = ASS_HEADER
    stream.metadata["language"] = "eng"
    return stream


def _write_subtitles(container, stream, cues) -> None:
    for start, end, text in cues:
        start_ms, end_ms = round(start * 1000), round(end * 1000)
        subtitle = SubtitleSet.create(
            f"0,0,Default,,0,0,0,,{text}".encode(), 0, end_ms - start_ms, start_ms,
        )
        packet = stream.codec_context.encode_subtitle(subtitle)
        packet.pts = packet.dts = start_ms
        packet.duration = end_ms - start_ms
        packet.time_base = Fraction(1, 1000)
        packet.stream = stream
        container.mux(packet)


def make_audio_file(
    path: str | Path, *, codec: str = "aac", sample_rate: int = 48000, seconds: float = 1.0,
) -> Path:
    """Write an audio-only file (a 440 Hz sine) and return its path; the container follows the suffix."""
    path = Path(path)
    container_format = {".m4a": "mp4", ".mp3": "mp3", ".mka": "matroska"}.get(path.suffix)
    with av.open(str(path), "w", format=container_format) as container:
        stream = _add_audio(container, codec, sample_rate, seconds, 0.0)
        _write_audio(container, stream, codec, sample_rate, seconds, 0.0)
    return path


def make_raw_h264(path: str | Path, parts: Sequence[tuple[tuple[int, int], int]]) -> Path:
    """Write a raw H.264 stream whose frame size changes: one (size, frames) part after the other.

    Frame indices count on across the parts. A raw stream carries no timestamps; demuxers assume 25 fps.
    """
    path = Path(path)
    data = b""
    first_index = 0
    for size, frames in parts:
        part = path.with_name(f"{path.stem}-part{first_index}.h264")
        with av.open(str(part), "w", format="h264") as container:
            stream = _add_video(
                container, "libx264", size, Fraction(25), Fraction(1, 25), "yuv420p", None, None, None,
            )
            for index in range(first_index, first_index + frames):
                frame = av.VideoFrame.from_ndarray(index_pattern(index, *size), format="rgb24")
                frame = frame.reformat(format="yuv420p")
                frame.pts = index - first_index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        data += part.read_bytes()
        part.unlink()
        first_index += frames
    path.write_bytes(data)
    return path


def truncate(path: str | Path, keep_fraction: float) -> Path:
    """Cut a file to the first `keep_fraction` of its bytes, as an interrupted upload leaves it."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path
