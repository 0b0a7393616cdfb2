"""Encode upscaled frames to H.264 or HEVC and mux them with the source's audio and subtitles."""

from __future__ import annotations

import logging
import os
from fractions import Fraction

import av
import av.filter
import numpy as np

from gpu.params import OutputError, UpscaleParams
from gpu.video import colour
from gpu.video.mux import remux_with_source
from gpu.video.probe import SourceInfo

logger = logging.getLogger(__name__)

CONTAINER_FORMATS = {"mp4": "mp4", "mkv": "matroska"}
_ENCODERS = {"h264": "libx264", "hevc": "libx265", "hevc10": "libx265"}


class VideoWriter:
    """Context manager that encodes frames and writes the finished file to `output_path` atomically.

    Leaving the `with` block without a successful `finish` removes every partial file.

    Video goes to a temporary video-only file first. `finish` then merges it with every audio and subtitle
    stream of the source in one interleaved pass into a second temporary name, and renames that into place.
    So memory stays flat in video length, and a visible output file is always complete.
    """

    def __init__(
        self,
        output_path: str | os.PathLike,
        info: SourceInfo,
        width: int,
        height: int,
        params: UpscaleParams,
        *,
        source_path: str | os.PathLike | None = None,
    ) -> None:
        self.output_path = os.path.abspath(os.fspath(output_path))
        self.info = info
        self.width = width
        self.height = height
        self.params = params
        self.source_path = os.fspath(source_path) if source_path is not None else info.path
        self.time_base = info.time_base_fraction
        self.container_format = CONTAINER_FORMATS[params.container]
        self.video_temp_path = f"{self.output_path}.video.partial"
        self.mux_temp_path = f"{self.output_path}.partial"
        self.notes: list[str] = []
        self._pts_offset = round(Fraction(info.start_time).limit_denominator(10**9) / self.time_base)
        self._last_pts: int | None = None
        self._frames_written = 0
        self._finished = False
        self._converter: _YuvConverter | None = None
        self._container = None
        self._stream = None
        self._open_video_temp()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None or not self._finished:
            self.abort()

    @property
    def frames_written(self) -> int:
        return self._frames_written

    def write(self, frame: av.VideoFrame | np.ndarray, pts: int) -> None:
        """Encode one frame shown at `pts` (in the source's time base units, strictly increasing).

        An ndarray is HxWx3 RGB: uint8 for rgb24, or uint16 for rgb48le.
        """
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"frame pts must increase: got {pts} after {self._last_pts}")
        video_frame = _as_video_frame(frame)
        if (video_frame.width, video_frame.height) != (self.width, self.height):
            raise ValueError(
                f"frame is {video_frame.width}x{video_frame.height}, "
                f"the writer expects {self.width}x{self.height}"
            )
        self._last_pts = pts
        video_frame.pts = pts - self._pts_offset
        video_frame.time_base = self.time_base
        for converted in self._converter_for(video_frame).convert(video_frame):
            self._mux_video(self._stream.encode(converted))
        self._frames_written += 1

    def finish(self) -> list[str]:
        """Flush the encoder, mux the source's audio and subtitles, rename into place; return user notes."""
        try:
            self._mux_video(self._stream.encode(None))
            self._container.close()
            self._container = None
            self.notes.extend(
                remux_with_source(
                    self.video_temp_path,
                    self.source_path,
                    self.info,
                    self.mux_temp_path,
                    self.container_format,
                )
            )
            os.replace(self.mux_temp_path, self.output_path)
        except OSError as error:
            self.abort()
            raise OutputError(
                "Writing the output video failed. Check that the disk has free space, then retry.",
                detail=str(error),
            ) from error
        except BaseException:
            self.abort()
            raise
        _remove(self.video_temp_path)
        self._finished = True
        logger.info(
            "Wrote %s: %d frames, %dx%d",
            self.output_path,
            self._frames_written,
            self.width,
            self.height,
        )
        return list(self.notes)

    def abort(self) -> None:
        """Close everything and remove every partial file; safe to call more than once and after finish."""
        if self._container is not None:
            try:
                self._container.close()
            except av.error.FFmpegError as error:
                logger.warning("Closing %s after a failure raised: %s", self.video_temp_path, error)
            self._container = None
        _remove(self.video_temp_path)
        _remove(self.mux_temp_path)

    def _open_video_temp(self) -> None:
        try:
            self._container = av.open(
                self.video_temp_path,
                "w",
                format=self.container_format,
                options=self._muxer_options(),
            )
        except (OSError, av.error.FFmpegError) as error:
            raise OutputError(
                f"The output file {self.output_path} could not be created. Check the folder exists and is "
                "writable.",
                detail=str(error),
            ) from error
        self._stream = self._add_video_stream()
        if self.info.is_hdr and self.params.codec != "hevc10":
            self.notes.append(
                f"The source is HDR ({self.info.color_trc}) and the output is 8-bit: no tone mapping was "
                "done, so the HDR signal is kept as it is and may show banding. Choose 10-bit HEVC to keep "
                "the full depth."
            )

    def _add_video_stream(self):
        info = self.info
        stream = self._container.add_stream(_ENCODERS[self.params.codec])
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self._pix_fmt()
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        stream.codec_context.framerate = info.frame_rate_fraction
        stream.sample_aspect_ratio = Fraction(*info.sample_aspect_ratio)
        stream.codec_context.sample_aspect_ratio = Fraction(*info.sample_aspect_ratio)
        stream.options = self._encoder_options()
        self._apply_colour_tags(stream.codec_context)
        return stream

    def _muxer_options(self) -> dict[str, str]:
        if self.container_format != "mp4":
            return {}
        # MP4 writes the edit list of a video that starts after 0 in the movie time scale (1/1000 by
        # default). The source's own scale keeps the first frame's time exact.
        return {"movie_timescale": str(self.time_base.denominator)}

    def _pix_fmt(self) -> str:
        ten_bit = self.params.codec == "hevc10"
        if self.width % 2 or self.height % 2:
            return "yuv444p10le" if ten_bit else "yuv444p"
        return "yuv420p10le" if ten_bit else "yuv420p"

    def _encoder_options(self) -> dict[str, str]:
        options = {"crf": str(self.params.crf), "preset": self.params.preset}
        if self.params.codec in ("hevc", "hevc10"):
            options["x265-params"] = ":".join(["log-level=error", *self._hdr10_params()])
        return options

    def _hdr10_params(self) -> list[str]:
        """Return x265 options that carry the source's HDR10 metadata into a 10-bit HEVC output.

        NOTE: H.264 and 8-bit HEVC outputs get the transfer, primaries and matrix tags but not this metadata.
        """
        info = self.info
        if self.params.codec != "hevc10" or not (info.mastering_display or info.content_light_level):
            return []
        params = ["hdr10=1"]
        if info.mastering_display:
            params.append(f"master-display={info.mastering_display}")
        if info.content_light_level:
            params.append(f"max-cll={info.content_light_level}")
        return params

    def _output_colour(self) -> tuple[str, str, str]:
        """Return the output's (matrix, primaries, transfer) names: the source's where known, else BT.709."""
        info = self.info
        matrix = info.color_space if info.color_space in colour.SCALE_MATRIX else "bt709"
        primaries = info.color_primaries or ("bt2020" if matrix.startswith("bt2020") else "bt709")
        transfer = info.color_trc or "bt709"
        return matrix, primaries, transfer

    def _apply_colour_tags(self, ctx) -> None:
        matrix, primaries, transfer = self._output_colour()
        ctx.colorspace = colour.name_code("space", matrix)
        ctx.color_primaries = colour.name_code("primaries", primaries)
        ctx.color_trc = colour.name_code("transfer", transfer)
        ctx.color_range = colour.name_code("range", "tv")

    def _converter_for(self, frame: av.VideoFrame) -> _YuvConverter:
        key = (frame.format.name, frame.width, frame.height)
        if self._converter is None or self._converter.key != key:
            matrix = colour.SCALE_MATRIX[self._output_colour()[0]]
            self._converter = _YuvConverter(frame, self._pix_fmt(), matrix, self.time_base)
        return self._converter

    def _mux_video(self, packets) -> None:
        try:
            self._container.mux(packets)
        except OSError as error:
            raise OutputError(
                "Writing the output video failed. Check that the disk has free space, then retry.",
                detail=str(error),
            ) from error


class _YuvConverter:
    """A filter graph that turns RGB frames into the encoder's limited-range YUV with the tagged matrix."""

    def __init__(self, template: av.VideoFrame, pix_fmt: str, matrix: str, time_base: Fraction) -> None:
        self.key = (template.format.name, template.width, template.height)
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(
            width=template.width,
            height=template.height,
            format=template.format.name,
            time_base=time_base,
        )
        scale = self.graph.add(
            "scale",
            f"flags=accurate_rnd+full_chroma_int:out_color_matrix={matrix}:out_range=limited",
        )
        fmt = self.graph.add("format", pix_fmt)
        sink = self.graph.add("buffersink")
        self.graph.link_nodes(source, scale, fmt, sink).configure()

    def convert(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        self.graph.vpush(frame)
        converted = []
        while True:
            try:
                converted.append(self.graph.vpull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return converted


def _as_video_frame(frame: av.VideoFrame | np.ndarray) -> av.VideoFrame:
    if isinstance(frame, av.VideoFrame):
        return frame
    array = np.ascontiguousarray(frame)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {array.shape}")
    if array.dtype == np.uint8:
        return av.VideoFrame.from_ndarray(array, format="rgb24")
    if array.dtype == np.uint16:
        return av.VideoFrame.from_ndarray(array, format="rgb48le")
    raise ValueError(f"expected uint8 or uint16 RGB, got {array.dtype}")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
