"""Probe a media file by its content: the video stream's facts, its audio and subtitle streams, and limits."""

from __future__ import annotations

import dataclasses
import logging
import os
import statistics
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import av

from gpu.params import InputError
from gpu.video import colour

logger = logging.getLogger(__name__)

HIDDEN_FRAME_CODECS = frozenset({"vp8", "vp9", "av1"})

# AVFieldOrder codes for interlaced content (TT, BB, TB, BT).
_INTERLACED_FIELD_ORDERS = frozenset({2, 3, 4, 5})

# An interval is irregular when it differs from the median interval by more than VFR_INTERVAL_TOLERANCE of
# it, and a stream is variable frame rate when more than VFR_IRREGULAR_SHARE of its intervals are irregular.
# The tolerance absorbs the 33/34 ms jitter of millisecond time bases.
VFR_INTERVAL_TOLERANCE = 0.10
VFR_IRREGULAR_SHARE = 0.05


@dataclass(frozen=True)
class ProbeLimits:
    """Upper bounds a source must stay within; None leaves a bound unchecked.

    `count_frames_max_bytes` bounds the files whose packets are counted for an exact frame count; larger files
    get an estimate from duration and frame rate.
    """

    max_bytes: int | None = None
    max_duration_s: float | None = None
    max_pixels: int | None = None
    count_frames_max_bytes: int = 4 * 1024**3


@dataclass(frozen=True)
class StreamInfo:
    """One audio or subtitle stream of the source."""

    index: int
    kind: str  # "audio" | "subtitle"
    codec: str
    language: str | None
    title: str | None
    channels: int | None
    sample_rate: int | None
    start_time: float | None
    duration: float | None
    is_default: bool
    bitmap: bool


@dataclass(frozen=True)
class SourceInfo:
    """Facts about a source video, as probed.

    `width` and `height` are the displayed size with rotation applied, and `sample_aspect_ratio` is given for
    that displayed orientation (swapped for 90 and 270 degree rotations). `rotation` is the clockwise angle a
    player turns the coded picture by. `frame_rate` is the average frame rate as an exact fraction.
    `frame_count_exact` is True when the count comes from the demuxed packets (edit-list discards and empty
    packets excluded) rather than from duration times frame rate. `path` is the absolute path that was probed;
    the writer copies audio and subtitles from it. `mastering_display` (SMPTE ST 2086) and
    `content_light_level` ("MaxCLL,MaxFALL" in cd/m2) are the HDR10 metadata of the first frame, written in
    the notation of x265's `master-display` and `max-cll` options.
    """

    container: str
    size_bytes: int
    video_index: int
    video_stream_count: int
    codec: str
    profile: str | None
    pix_fmt: str
    bit_depth: int
    has_alpha: bool
    coded_width: int
    coded_height: int
    width: int
    height: int
    rotation: int
    sample_aspect_ratio: tuple[int, int]
    frame_rate: tuple[int, int]
    time_base: tuple[int, int]
    is_vfr: bool
    frame_count: int
    frame_count_exact: bool
    duration: float
    start_time: float
    color_range: str | None
    color_space: str | None
    color_primaries: str | None
    color_trc: str | None
    interlaced: bool
    audio: tuple[StreamInfo, ...] = field(default_factory=tuple)
    subtitles: tuple[StreamInfo, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)
    path: str = ""
    mastering_display: str | None = None
    content_light_level: str | None = None

    @property
    def time_base_fraction(self) -> Fraction:
        return Fraction(*self.time_base)

    @property
    def frame_rate_fraction(self) -> Fraction:
        return Fraction(*self.frame_rate)

    @property
    def is_hdr(self) -> bool:
        return colour.is_hdr_transfer(self.color_trc)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict; `SourceInfo.from_dict` turns it back into an equal object."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SourceInfo:
        """Build a SourceInfo from `to_dict` output, also after JSON; unknown keys are ignored."""
        known = {entry.name for entry in dataclasses.fields(cls)}
        data = {key: value for key, value in values.items() if key in known}
        for key in ("sample_aspect_ratio", "frame_rate", "time_base", "notes"):
            data[key] = tuple(data[key])
        data["audio"] = tuple(StreamInfo(**stream) for stream in data.get("audio", ()))
        data["subtitles"] = tuple(StreamInfo(**stream) for stream in data.get("subtitles", ()))
        return cls(**data)


def probe(path: str | os.PathLike, *, limits: ProbeLimits | None = None) -> SourceInfo:
    """Probe `path` by content and decode its first video frame.

    Raises InputError, whose `user_message` names the problem and the fix, for:
    - an empty file, or a file that is not a media file;
    - a file without a video stream;
    - a video that cannot be decoded (unsupported codec, encryption, cut off before the first frame);
    - a source over `limits`.
    """
    limits = limits or ProbeLimits()
    path = os.fspath(path)
    size_bytes = _checked_size(path, limits)
    container = _open_media(path)
    try:
        info = _probe_container(container, path, size_bytes, limits)
    finally:
        container.close()
    _check_limits(info, limits)
    return info


def _checked_size(path: str, limits: ProbeLimits) -> int:
    try:
        size_bytes = os.path.getsize(path)
    except OSError as error:
        raise InputError("The file could not be read. Upload it again.", detail=str(error)) from error
    if size_bytes == 0:
        raise InputError("The file is empty (0 bytes). Upload the video file again.")
    if limits.max_bytes is not None and size_bytes > limits.max_bytes:
        raise InputError(
            f"The file is {_mib(size_bytes)} MiB, over the limit of {_mib(limits.max_bytes)} MiB. "
            "Upload a shorter or more compressed video."
        )
    return size_bytes


def _open_media(path: str) -> av.container.InputContainer:
    try:
        return av.open(path, metadata_errors="replace")
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise InputError(
            "The file is not a video file that can be read (its content matches no known media format). "
            "Upload a video file such as MP4, MKV, MOV or WebM.",
            detail=str(error),
        ) from error


def _probe_container(container, path: str, size_bytes: int, limits: ProbeLimits) -> SourceInfo:
    video_streams = [s for s in container.streams.video if not _is_attached_picture(s)]
    if not video_streams:
        kinds = "audio only" if container.streams.audio else "no video"
        raise InputError(
            f"The file contains no video stream ({kinds}). Upload a file that contains video.",
        )
    stream = _main_video_stream(video_streams)
    first_frame = _decode_first_frame(container, stream)

    notes: list[str] = []
    if len(video_streams) > 1:
        notes.append(
            f"The file has {len(video_streams)} video streams; only stream {stream.index} is upscaled."
        )
    timing = _stream_timing(path, stream, size_bytes, limits, container)
    info = _build_info(container, stream, first_frame, size_bytes, len(video_streams), timing, notes)
    return dataclasses.replace(
        info,
        path=os.path.abspath(path),
        mastering_display=colour.mastering_display(first_frame),
        content_light_level=colour.content_light_level(first_frame),
    )


def _is_attached_picture(stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _main_video_stream(video_streams):
    for stream in video_streams:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    return video_streams[0]


def _decode_first_frame(container, stream) -> av.VideoFrame:
    undecodable = (
        "The video stream could not be decoded ({codec}). The file may be damaged, encrypted (DRM) or use a "
        "codec this server does not support. Convert it to H.264 MP4 and upload it again."
    )
    codec = codec_name(stream)
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                return frame
    except av.error.FFmpegError as error:
        raise InputError(undecodable.format(codec=codec), detail=str(error)) from error
    raise InputError(
        "The video ends before its first complete frame: the file is cut off or damaged. "
        "Upload the complete file again.",
        detail=f"no frame decoded from stream {stream.index} ({codec})",
    )


@dataclass(frozen=True)
class _Timing:
    frame_rate: Fraction
    frame_count: int
    frame_count_exact: bool
    is_vfr: bool
    duration: float


def _stream_timing(path, stream, size_bytes, limits, probed_container) -> _Timing:
    time_base = stream.time_base
    duration = _duration_seconds(stream, probed_container)
    declared_rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if size_bytes > limits.count_frames_max_bytes:
        rate = Fraction(declared_rate) if declared_rate else Fraction(25)
        return _Timing(rate, max(1, round(duration * rate)), False, False, duration)

    timestamps = _presented_packet_timestamps(path, stream.index)
    exact = bool(timestamps)
    if codec_name(stream) in HIDDEN_FRAME_CODECS:
        shown_timestamps = _drop_hidden_frame_timestamps(timestamps)
        exact = exact and len(shown_timestamps) == len(timestamps)
        timestamps = shown_timestamps
    intervals = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False) if b > a]
    rate = _average_rate(declared_rate, intervals, time_base)
    if timestamps and duration <= 0:
        duration = float((timestamps[-1] - timestamps[0] + (intervals[-1] if intervals else 0)) * time_base)
    return _Timing(rate, max(len(timestamps), 1), exact, _is_variable(intervals), duration)


def _drop_hidden_frame_timestamps(timestamps: list[int]) -> list[int]:
    """Drop packets stamped within half a frame interval of the previous one.

    VP8, VP9 and AV1 in WebM can store a hidden reference frame in its own packet, stamped at or next to the
    frame shown after it. The decoder outputs no frame for such a packet.
    """
    if len(timestamps) < 3:
        return timestamps
    median = statistics.median(b - a for a, b in zip(timestamps, timestamps[1:], strict=False))
    shown_timestamps = [timestamps[0]]
    for stamp in timestamps[1:]:
        if stamp - shown_timestamps[-1] >= median / 2:
            shown_timestamps.append(stamp)
    return shown_timestamps


def _presented_packet_timestamps(path: str, stream_index: int) -> list[int]:
    """Return the sorted presentation timestamps of the packets a decoder turns into shown frames."""
    timestamps: list[int] = []
    with av.open(path, metadata_errors="replace") as container:
        stream = container.streams[stream_index]
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    # Raw elementary streams have no timestamps, only the frame duration the parser assumes.
                    stamp = timestamps[-1] + max(1, packet.duration or 1) if timestamps else 0
                timestamps.append(stamp)
        except av.error.FFmpegError as error:
            logger.info("Packet count of %s stopped early: %s", path, error)
    timestamps.sort()
    return timestamps


def _average_rate(declared, intervals: list[int], time_base: Fraction) -> Fraction:
    """Return the container's average rate unless the median packet interval disagrees with it by over 2%.

    A disagreeing or missing declared rate is replaced by the mean rate measured from the packet timestamps.
    """
    if not intervals:
        return Fraction(declared) if declared else Fraction(25)
    median_rate = 1 / (Fraction(statistics.median(intervals)) * time_base)
    if declared and abs(float(declared) / float(median_rate) - 1) <= 0.02:
        return Fraction(declared)
    mean_rate = 1 / (Fraction(sum(intervals), len(intervals)) * time_base)
    return mean_rate.limit_denominator(1001)


def _is_variable(intervals: list[int]) -> bool:
    if len(intervals) < 3:
        return False
    median = statistics.median(intervals)
    irregular = sum(1 for step in intervals if abs(step - median) > VFR_INTERVAL_TOLERANCE * median)
    return irregular > VFR_IRREGULAR_SHARE * len(intervals)


def _duration_seconds(stream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _build_info(container, stream, frame, size_bytes, video_count, timing: _Timing, notes) -> SourceInfo:
    ctx = stream.codec_context
    pix_fmt = frame.format.name
    rotation = (-int(round(frame.rotation or 0))) % 360
    rotation = rotation if rotation in (0, 90, 180, 270) else 0
    sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio or Fraction(1)
    sar_pair = (sar.numerator, sar.denominator) if sar.numerator > 0 else (1, 1)
    width, height = frame.width, frame.height
    if rotation in (90, 270):
        width, height = height, width
        sar_pair = (sar_pair[1], sar_pair[0])

    has_alpha = colour.pixel_format_has_alpha(pix_fmt)
    if has_alpha:
        notes.append("The video has an alpha (transparency) channel; the output is opaque.")
    color_trc = colour.code_name("transfer", frame.color_trc)
    interlaced = bool(frame.interlaced_frame) or ctx.field_order in _INTERLACED_FIELD_ORDERS
    if interlaced:
        notes.append("The video is interlaced; it is deinterlaced to one frame per frame.")

    start_time = container.start_time / av.time_base if container.start_time is not None else 0.0
    return SourceInfo(
        container=container.format.name,
        size_bytes=size_bytes,
        video_index=stream.index,
        video_stream_count=video_count,
        codec=codec_name(stream),
        profile=ctx.profile or None,
        pix_fmt=pix_fmt,
        bit_depth=colour.pixel_format_bit_depth(pix_fmt),
        has_alpha=has_alpha,
        coded_width=ctx.coded_width or frame.width,
        coded_height=ctx.coded_height or frame.height,
        width=width,
        height=height,
        rotation=rotation,
        sample_aspect_ratio=sar_pair,
        frame_rate=(timing.frame_rate.numerator, timing.frame_rate.denominator),
        time_base=(stream.time_base.numerator, stream.time_base.denominator),
        is_vfr=timing.is_vfr,
        frame_count=timing.frame_count,
        frame_count_exact=timing.frame_count_exact,
        duration=timing.duration,
        start_time=start_time,
        color_range=colour.code_name("range", frame.color_range),
        color_space=colour.code_name("space", frame.colorspace),
        color_primaries=colour.code_name("primaries", frame.color_primaries),
        color_trc=color_trc,
        interlaced=interlaced,
        audio=tuple(_stream_info(s, "audio") for s in container.streams.audio),
        subtitles=tuple(_stream_info(s, "subtitle") for s in container.streams.subtitles),
        notes=tuple(notes),
    )


def _stream_info(stream, kind: str) -> StreamInfo:
    ctx = stream.codec_context
    codec = codec_name(stream)
    metadata = stream.metadata or {}
    time_base = stream.time_base
    start = float(stream.start_time * time_base) if stream.start_time is not None and time_base else None
    duration = float(stream.duration * time_base) if stream.duration is not None and time_base else None
    is_audio = kind == "audio"
    return StreamInfo(
        index=stream.index,
        kind=kind,
        codec=codec,
        language=stream.language or metadata.get("language") or None,
        title=metadata.get("title") or None,
        channels=ctx.channels if is_audio else None,
        sample_rate=ctx.sample_rate if is_audio else None,
        start_time=start,
        duration=duration,
        is_default=bool(stream.disposition & av.stream.Disposition.default),
        bitmap=kind == "subtitle" and bool(ctx is not None and ctx.codec.bitmap_sub),
    )


def codec_name(stream) -> str:
    """Return FFmpeg's codec name for a stream ("dts", "mp3"), not its decoder's name ("dca", "mp3float")."""
    ctx = stream.codec_context
    if ctx is None or ctx.codec is None:
        return "unknown"
    return ctx.codec.canonical_name


def _check_limits(info: SourceInfo, limits: ProbeLimits) -> None:
    if limits.max_duration_s is not None and info.duration > limits.max_duration_s:
        raise InputError(
            f"The video is {info.duration:.1f} s long, over the limit of {limits.max_duration_s:g} s. "
            "Cut it into shorter parts and upload them one by one."
        )
    pixels = info.width * info.height
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        raise InputError(
            f"The video is {info.width}x{info.height} ({pixels} pixels), over the limit of "
            f"{limits.max_pixels} source pixels. Upload a smaller video."
        )


def _mib(size_bytes: int) -> str:
    return f"{size_bytes / 1024**2:.1f}"
