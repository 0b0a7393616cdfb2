"""Decode a source video into display-oriented, progressive frames of one size and pixel format."""

from __future__ import annotations

import heapq
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.filter

from gpu.params import DecodeError
from gpu.video import colour
from gpu.video.probe import SourceInfo

logger = logging.getLogger(__name__)

INTERPOLATIONS = ("lanczos", "bicubic", "bilinear", "area", "neighbor")

# Frames held back so that timestamps handed out of presentation order can be sorted before they are given
# to the frames, which the decoder outputs in presentation order. AVI with B-frames needs this, because it
# stores decode-order stamps.
TIMESTAMP_REORDER_DEPTH = 8

_ROTATION_FILTERS = {
    90: [("transpose", "clock")],
    180: [("hflip", ""), ("vflip", "")],
    270: [("transpose", "cclock")],
}


@dataclass
class DecodedFrame:
    """One output frame.

    `index` is the 0-based presentation index and `pts` its presentation timestamp in `time_base` units, as
    decoded (edit lists applied, strictly increasing). `frame` is display-oriented (rotation applied),
    progressive, without alpha, at the first frame's size (or the requested size) and in the requested pixel
    format.
    """

    index: int
    pts: int
    time_base: Fraction
    frame: av.VideoFrame


class FrameReader:
    """Iterator of DecodedFrame over a source's main video stream; use it as a context manager.

    `width` and `height` default to the displayed size from `info`. `pix_fmt` is the output pixel format
    (rgb24, or rgb48le for high bit depth sources). Raises DecodeError with the index of the first frame that
    could not be decoded when the stream breaks mid-decode.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: SourceInfo,
        *,
        width: int | None = None,
        height: int | None = None,
        pix_fmt: str = "rgb24",
        interpolation: str = "lanczos",
        threads: int = 0,
    ) -> None:
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.path = os.fspath(path)
        self.info = info
        self.width = width or info.width
        self.height = height or info.height
        self.pix_fmt = pix_fmt
        self.interpolation = interpolation
        self.threads = threads
        self._container: av.container.InputContainer | None = None
        self._graph: _FilterGraph | None = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the source file; safe to call more than once."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def __iter__(self) -> Iterator[DecodedFrame]:
        self.close()
        self._graph = None
        self._container = av.open(self.path, metadata_errors="replace")
        stream = self._container.streams[self.info.video_index]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        time_base = stream.time_base
        index = 0
        for frame in self._filtered_frames(stream):
            pts = frame.pts
            if frame.time_base is not None and frame.time_base != time_base:
                # Deinterlacers announce a halved time base because they can output one frame per field.
                pts = round(pts * frame.time_base / time_base)
                frame.pts, frame.time_base = pts, time_base
            yield DecodedFrame(index=index, pts=pts, time_base=time_base, frame=frame)
            index += 1

    def _filtered_frames(self, stream) -> Iterator[av.VideoFrame]:
        for frame in self._stamped_frames(stream):
            graph = self._graph_for(frame, stream)
            yield from graph.process(frame)
        if self._graph is not None:
            yield from self._graph.flush()

    def _graph_for(self, frame: av.VideoFrame, stream) -> _FilterGraph:
        key = (frame.width, frame.height, frame.format.name)
        if self._graph is None or self._graph.key != key:
            if self._graph is not None:
                logger.info(
                    "Frame size changed mid-stream to %sx%s in %s; scaling to the first size",
                    frame.width,
                    frame.height,
                    self.path,
                )
                pending = list(self._graph.flush())
                self._graph = _FilterGraph(self, frame, stream.time_base)
                self._graph.pending.extend(pending)
            else:
                self._graph = _FilterGraph(self, frame, stream.time_base)
        return self._graph

    def _stamped_frames(self, stream) -> Iterator[av.VideoFrame]:
        """Yield decoded frames in presentation order with strictly increasing timestamps."""
        step = _frame_step(self.info, stream.time_base)
        waiting_frames: deque[av.VideoFrame] = deque()
        stamps: list[int] = []
        last_pts: int | None = None
        for frame in self._decoded_frames(stream):
            stamp = frame.pts if frame.pts is not None else frame.dts
            if stamp is None:
                stamp = (last_pts + step) if last_pts is not None else 0
            heapq.heappush(stamps, stamp)
            waiting_frames.append(frame)
            if len(waiting_frames) > TIMESTAMP_REORDER_DEPTH:
                ready = waiting_frames.popleft()
                last_pts = _assign_pts(ready, heapq.heappop(stamps), last_pts, step)
                yield ready
        while waiting_frames:
            ready = waiting_frames.popleft()
            last_pts = _assign_pts(ready, heapq.heappop(stamps), last_pts, step)
            yield ready

    def _decoded_frames(self, stream) -> Iterator[av.VideoFrame]:
        decoded = 0
        try:
            for packet in self._container.demux(stream):
                for frame in packet.decode():
                    decoded += 1
                    yield frame
        except av.error.FFmpegError as error:
            raise DecodeError(
                f"The video could not be decoded from frame {decoded} on: the file is damaged. "
                "Repair or re-export the video and upload it again.",
                frame_index=decoded,
                detail=str(error),
            ) from error


def _assign_pts(frame: av.VideoFrame, stamp: int, last_pts: int | None, step: int) -> int:
    """Stamp `frame`, one frame step after `last_pts` when the sorted stamp would not increase."""
    if last_pts is not None and stamp <= last_pts:
        stamp = last_pts + step
    frame.pts = stamp
    return stamp


def _frame_step(info: SourceInfo, time_base: Fraction) -> int:
    """Return one frame interval in `time_base` units, at least 1."""
    rate = info.frame_rate_fraction or Fraction(25)
    return max(1, round(1 / (rate * time_base)))


class _FilterGraph:
    """A PyAV filter graph for one input size and format: deinterlace, scale and convert, rotate."""

    def __init__(self, reader: FrameReader, template: av.VideoFrame, time_base: Fraction) -> None:
        self.key = (template.width, template.height, template.format.name)
        self.pending: list[av.VideoFrame] = []
        self.graph = av.filter.Graph()
        nodes = [
            self.graph.add_buffer(
                width=template.width,
                height=template.height,
                format=template.format.name,
                time_base=time_base,
            )
        ]
        for name, args in _filter_chain(reader, template):
            nodes.append(self.graph.add(name, args))
        nodes.append(self.graph.add("buffersink"))
        self.graph.link_nodes(*nodes).configure()

    def process(self, frame: av.VideoFrame) -> Iterator[av.VideoFrame]:
        yield from self.pending
        self.pending.clear()
        self.graph.vpush(frame)
        yield from self._pull_all()

    def flush(self) -> Iterator[av.VideoFrame]:
        yield from self.pending
        self.pending.clear()
        self.graph.vpush(None)
        yield from self._pull_all()

    def _pull_all(self) -> Iterator[av.VideoFrame]:
        while True:
            try:
                yield self.graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return


def _filter_chain(reader: FrameReader, template: av.VideoFrame) -> list[tuple[str, str]]:
    info = reader.info
    chain: list[tuple[str, str]] = []
    if info.interlaced:
        chain.append(("bwdif", "mode=send_frame:parity=auto:deint=all"))
    coded_width, coded_height = reader.width, reader.height
    if info.rotation in (90, 270):
        coded_width, coded_height = coded_height, coded_width
    chain.append(("scale", _scale_args(reader, template, coded_width, coded_height)))
    chain.append(("format", reader.pix_fmt))
    chain.extend(_ROTATION_FILTERS.get(info.rotation, []))
    sar_num, sar_den = info.sample_aspect_ratio
    chain.append(("setsar", f"{sar_num}/{sar_den}"))
    return chain


def _scale_args(reader: FrameReader, template: av.VideoFrame, width: int, height: int) -> str:
    info = reader.info
    source_format = template.format.name
    frame_range = colour.code_name("range", template.color_range) or info.color_range
    frame_space = colour.code_name("space", template.colorspace) or info.color_space
    in_range = "full" if colour.is_full_range(source_format, frame_range) else "limited"
    output_is_rgb = av.VideoFormat(reader.pix_fmt).is_rgb
    args = [
        f"w={width}",
        f"h={height}",
        f"flags={reader.interpolation}+accurate_rnd+full_chroma_int+full_chroma_inp",
        f"in_range={in_range}",
        f"out_range={'full' if output_is_rgb else in_range}",
    ]
    if not av.VideoFormat(source_format).is_rgb:
        matrix = colour.decode_matrix(frame_space, info.height)
        args.append(f"in_color_matrix={matrix}")
        if not output_is_rgb:
            # Tags YUV output with the matrix its samples use, so the encoder never converts them twice.
            args.append(f"out_color_matrix={matrix}")
    return ":".join(args)
