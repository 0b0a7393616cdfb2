"""Merge an encoded video-only file with the source's audio and subtitle streams in one interleaved pass."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterator
from fractions import Fraction

import av

from gpu.video.probe import SourceInfo, codec_name

logger = logging.getLogger(__name__)

# Audio codecs the MP4 muxer stores as they are; any other audio is re-encoded to AAC for MP4.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
TEXT_SUBTITLE_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"})
AAC_BITRATE_PER_CHANNEL_PAIR = 320_000
_DISPLAY_NAMES = {"mp4": "MP4", "matroska": "MKV"}
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def remux_with_source(
    video_path: str,
    source_path: str,
    info: SourceInfo,
    output_path: str,
    container_format: str,
) -> list[str]:
    """Write `output_path` with the video of `video_path` and every audio and subtitle stream of the source.

    Audio is copied where the container allows it, else re-encoded (AAC in MP4, FLAC in Matroska). Text
    subtitles become mov_text in MP4 and are copied in Matroska; bitmap subtitles are kept in Matroska and
    dropped from MP4. Timestamps move by the source's start time, like the video's. Returns user notes.
    """
    notes: list[str] = []
    with (
        av.open(video_path) as video_in,
        av.open(source_path, metadata_errors="replace") as source,
        av.open(
            output_path, "w", format=container_format, options=_muxer_options(video_in, container_format)
        ) as output,
    ):
        video_stream = output.add_stream_from_template(video_in.streams.video[0])
        routes = _plan_routes(source, info, output, container_format, notes)
        video_packets = _copied_packets(video_in, video_in.streams.video[0], video_stream)
        source_packets = _source_packets(source, routes, info.start_time)
        for packet in _merged(video_packets, source_packets):
            output.mux(packet)
        for route in routes.values():
            for packet in route.flush():
                output.mux(packet)
    return notes


def _muxer_options(video_in, container_format: str) -> dict[str, str]:
    if container_format != "mp4":
        return {}
    options = {"movflags": "+faststart"}
    # Edit lists are written in the movie time scale (1/1000 by default); the video's own scale keeps a
    # late-starting video exact to the tick.
    options["movie_timescale"] = str(video_in.streams.video[0].time_base.denominator)
    return options


class _Route:
    """The path of one source stream to the output: packets copied as they are, or decoded and re-encoded."""

    def __init__(self, in_stream, out_stream, *, transcode: bool) -> None:
        self.in_stream = in_stream
        self.out_stream = out_stream
        self.transcode = transcode
        self.resampler = None
        self.next_pts: int | None = None

    def packets(self, packet: av.Packet, offset_seconds: Fraction) -> list[av.Packet]:
        if not self.transcode:
            _shift(packet, offset_seconds)
            packet.stream = self.out_stream
            return [packet]
        if self.in_stream.type == "subtitle":
            return self._subtitle_packets(packet, offset_seconds)
        return self._audio_packets(packet, offset_seconds)

    def flush(self) -> list[av.Packet]:
        if not self.transcode or self.in_stream.type != "audio" or self.next_pts is None:
            return []
        return self._encode(None)

    def _audio_packets(self, packet: av.Packet, offset_seconds: Fraction) -> list[av.Packet]:
        encoded = []
        for frame in packet.decode():
            if self.next_pts is None:
                encoded.extend(self._start_audio(frame, offset_seconds))
            encoded.extend(self._encode(frame))
        return encoded

    def _start_audio(self, first: av.AudioFrame, offset_seconds: Fraction) -> list[av.Packet]:
        """Place the first frame and encode silence from time 0 up to it when it starts late.

        An AAC encoder puts 1024 priming samples before the first frame, and the MP4 muxer trims them (with an
        edit list) only from a track that starts at or before 0. Without the silence, audio that starts late
        would be heard 1024 samples early.
        """
        start = Fraction(first.pts or 0) * first.time_base - offset_seconds
        start_samples = round(start * self.out_stream.codec_context.sample_rate)
        self.next_pts = min(0, start_samples)
        if start_samples <= 0:
            return []
        silence = av.AudioFrame(format=first.format.name, layout=first.layout.name, samples=start_samples)
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        silence.sample_rate = first.sample_rate
        return self._encode(silence)

    def _encode(self, frame) -> list[av.Packet]:
        """Encode a decoded frame, or flush with None. Output timestamps count samples from the first frame.

        NOTE: gaps between the source's audio frames are closed up, not kept as silence.
        """
        ctx = self.out_stream.codec_context
        if self.resampler is None:
            self.resampler = av.AudioResampler(
                format=ctx.format,
                layout=ctx.layout,
                rate=ctx.sample_rate,
                frame_size=ctx.frame_size or None,
            )
        if frame is not None:
            frame.pts = None
        packets = []
        for resampled in self.resampler.resample(frame):
            resampled.pts = self.next_pts
            resampled.time_base = Fraction(1, ctx.sample_rate)
            self.next_pts += resampled.samples
            packets.extend(self.out_stream.encode(resampled))
        if frame is None:
            packets.extend(self.out_stream.encode(None))
        return packets

    def _subtitle_packets(self, packet: av.Packet, offset_seconds: Fraction) -> list[av.Packet]:
        subtitles = self.in_stream.codec_context.decode2(packet)
        if subtitles is None or packet.pts is None:
            return []
        encoded = self.out_stream.codec_context.encode_subtitle(subtitles)
        encoded.time_base = packet.time_base
        encoded.pts = encoded.dts = packet.pts
        encoded.duration = packet.duration
        _shift(encoded, offset_seconds)
        encoded.stream = self.out_stream
        return [encoded]


def _plan_routes(source, info: SourceInfo, output, container_format: str, notes: list[str]) -> dict:
    routes: dict[int, _Route] = {}
    for stream in source.streams.audio:
        routes[stream.index] = _audio_route(stream, output, container_format, notes)
    for stream in source.streams.subtitles:
        route = _subtitle_route(stream, output, container_format, notes)
        if route is not None:
            routes[stream.index] = route
    return routes


def _audio_route(stream, output, container_format: str, notes: list[str]) -> _Route:
    codec = codec_name(stream)
    copyable = _muxer_accepts(output, stream)
    if container_format == "mp4":
        copyable = copyable and codec in MP4_AUDIO_CODECS
    if copyable:
        return _Route(stream, _copy_stream(output, stream), transcode=False)

    in_ctx = stream.codec_context
    target = "aac" if container_format == "mp4" else "flac"
    out_stream = output.add_stream(target, rate=in_ctx.sample_rate)
    out_stream.codec_context.layout = _named_layout(in_ctx)
    if target == "aac":
        out_stream.codec_context.bit_rate = AAC_BITRATE_PER_CHANNEL_PAIR * max(1, (in_ctx.channels + 1) // 2)
    out_stream.time_base = Fraction(1, in_ctx.sample_rate)
    _copy_stream_tags(stream, out_stream)
    label = "AAC" if target == "aac" else "FLAC (lossless)"
    container_name = _DISPLAY_NAMES[container_format]
    notes.append(
        f"Audio stream {stream.index} ({codec}) cannot be stored in {container_name} as it is; "
        f"it was re-encoded to {label}."
    )
    return _Route(stream, out_stream, transcode=True)


def _muxer_accepts(output, stream) -> bool:
    """Return True when the output format can store the stream's codec as it is (FFmpeg's codec query)."""
    codec = stream.codec_context.codec
    supported = output.supported_codecs
    return codec.name in supported or codec.canonical_name in supported


def _named_layout(ctx) -> av.AudioLayout:
    """Return the stream's channel layout, or the default layout for its channel count when it has no name.

    Encoders such as AAC reject layouts of unspecified order ("2 channels"), which PCM in Matroska often has.
    """
    if "channels" not in ctx.layout.name:
        return ctx.layout
    return av.AudioLayout(_DEFAULT_LAYOUTS.get(ctx.channels, "stereo"))


def _subtitle_route(stream, output, container_format: str, notes: list[str]) -> _Route | None:
    codec = codec_name(stream)
    if container_format != "mp4":
        if _muxer_accepts(output, stream):
            return _Route(stream, _copy_stream(output, stream), transcode=False)
        if codec in TEXT_SUBTITLE_CODECS:
            return _text_subtitle_route(stream, output, "srt")
        notes.append(f"Subtitle stream {stream.index} ({codec}) cannot be stored in MKV and was dropped.")
        return None
    if codec == "mov_text":
        return _Route(stream, _copy_stream(output, stream), transcode=False)
    if codec in TEXT_SUBTITLE_CODECS:
        return _text_subtitle_route(stream, output, "mov_text")
    notes.append(f"Subtitle stream {stream.index} ({codec}) cannot be stored in MP4; choose MKV to keep it.")
    return None


def _text_subtitle_route(stream, output, target: str) -> _Route:
    in_ctx = stream.codec_context
    in_ctx.open()
    out_stream = output.add_stream(target)
    out_stream.time_base = stream.time_base
    out_stream.codec_context.time_base = stream.time_base
    if in_ctx.subtitle_header:
        out_stream.codec_context.subtitle_header = in_ctx.subtitle_header
    _copy_stream_tags(stream, out_stream)
    return _Route(stream, out_stream, transcode=True)


def _copy_stream(output, stream):
    out_stream = output.add_stream_from_template(stream)
    _copy_stream_tags(stream, out_stream)
    return out_stream


def _copy_stream_tags(in_stream, out_stream) -> None:
    metadata = in_stream.metadata or {}
    for key in ("language", "title", "handler_name"):
        if metadata.get(key):
            out_stream.metadata[key] = metadata[key]
    if in_stream.language:
        out_stream.metadata["language"] = in_stream.language
    out_stream.disposition = in_stream.disposition


def _copied_packets(container, in_stream, out_stream) -> Iterator[av.Packet]:
    for packet in container.demux(in_stream):
        if packet.dts is None and packet.pts is None:
            continue
        packet.stream = out_stream
        yield packet


def _source_packets(source, routes: dict, start_time: float) -> Iterator[av.Packet]:
    if not routes:
        return
    offset = Fraction(start_time).limit_denominator(10**9)
    streams = [route.in_stream for route in routes.values()]
    for packet in source.demux(streams):
        if packet.size == 0 or (packet.dts is None and packet.pts is None):
            continue
        yield from routes[packet.stream_index].packets(packet, offset)


def _shift(packet: av.Packet, offset_seconds: Fraction) -> None:
    ticks = round(offset_seconds / packet.time_base)
    if packet.pts is not None:
        packet.pts -= ticks
    if packet.dts is not None:
        packet.dts -= ticks


def _merged(*iterators: Iterator[av.Packet]) -> Iterator[av.Packet]:
    """Merge packet iterators by decode time, so the muxer interleaves without buffering a whole stream."""
    counter = itertools.count()
    keyed = [((_seconds(p), next(counter), p) for p in iterator) for iterator in iterators]
    for _, _, packet in heapq.merge(*keyed):
        yield packet


def _seconds(packet: av.Packet) -> Fraction:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return Fraction(stamp or 0) * packet.time_base
