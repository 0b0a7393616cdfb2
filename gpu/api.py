"""The one entry point the web app calls: upscale a video file into another, reporting progress.

`upscale_video` probes the input, picks the upscaler for the requested variant, and runs three stages at
once: the streaming buffer decodes ahead on CPU threads, the upscaler works through windows of frames, and
the encoder stage writes output frames on its own thread. torch is never imported here, so the web process
may import this module.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from gpu.encoding import EncoderStage
from gpu.geometry import OutputGeometry
from gpu.params import (
    CancelCheck,
    Cancelled,
    DecodeError,
    ModelError,
    OutputError,
    Progress,
    ProgressCallback,
    RuntimeOptions,
    UpscaleParams,
    UpscaleResult,
)
from gpu.streaming import ArrayLayout, BufferLimits, BufferTooSmallError, StreamingFrameBuffer
from gpu.upscalers import get_upscaler
from gpu.upscalers.base import LQSpec, Upscaler
from gpu.video.decode import FrameReader
from gpu.video.encode import VideoWriter
from gpu.video.probe import SourceInfo, probe

log = logging.getLogger(__name__)

CANCEL_CHECK_FRAMES = 8
PROGRESS_INTERVAL_S = 1.0
PREVIEW_MAX_WIDTH = 640

STAGE_UPSCALING = "upscaling"
STAGE_FINISHING = "finishing"
STAGE_DONE = "done"


def upscale_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    params: UpscaleParams,
    *,
    options: RuntimeOptions | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    source_info: SourceInfo | None = None,
) -> UpscaleResult:
    """Upscale `input_path` into `output_path`, exactly `params.scale` times the displayed size.

    The output keeps every frame with its source timestamp. Progress goes to `on_progress` at most about
    once a second plus a final report. `should_cancel` is polled before a window whenever 8 or more source
    frames were read since the last poll, so a cancel takes effect within one window.

    Raises InputError, DecodeError, OutputError or ModelError with a message for the user, or Cancelled.
    On every error the partial output is removed.
    """
    options = options or RuntimeOptions()
    started = time.monotonic()
    info = source_info if source_info is not None else probe(str(input_path))
    upscaler = get_upscaler(params.variant, options, params)
    geometry = OutputGeometry(info.width, info.height, params.scale)
    log.info(
        "Upscaling %s with %s: %dx%d to %dx%d, about %d frames",
        input_path,
        upscaler.label,
        geometry.source_width,
        geometry.source_height,
        geometry.width,
        geometry.height,
        info.frame_count,
    )

    job = _Job(Path(input_path), Path(output_path), info, params, options, upscaler, geometry)
    result = _run_stages(
        job, ProgressReporter(on_progress, expected_total=info.frame_count), CancelGate(should_cancel)
    )
    log.info("Upscaled %s: %d frames in %.1f s", input_path, result.frames, time.monotonic() - started)
    return result


@dataclass(frozen=True)
class _Job:
    """The resolved inputs of one run: paths, source facts, parameters, upscaler and output geometry."""

    input_path: Path
    output_path: Path
    info: SourceInfo
    params: UpscaleParams
    options: RuntimeOptions
    upscaler: Upscaler
    geometry: OutputGeometry


def _run_stages(job: _Job, progress: ProgressReporter, cancel_gate: CancelGate) -> UpscaleResult:
    buffer = _make_buffer(job)
    writer = _open_writer(job)
    previews = PreviewWriter(job.options.preview_path, job.options.preview_interval_s)
    encoder = EncoderStage(writer, queue_frames=job.options.encode_queue_frames, on_written=previews.offer)
    emitter = _Emitter(buffer, encoder, progress)
    try:
        with buffer:
            encoder.start()
            job.upscaler.run(buffer, job.geometry, emitter.emit, cancel_gate)
            emitter.check_complete()
            progress.report_now(emitter.count, STAGE_FINISHING)
            notes = encoder.finish()
    except BaseException as exc:
        encoder.abort()
        output_error = _as_output_error(exc, encoder)
        if output_error is None:
            raise
        raise output_error from exc

    progress.report_now(emitter.count, STAGE_DONE, total=emitter.count)
    return UpscaleResult(
        frames=emitter.count,
        width=job.geometry.width,
        height=job.geometry.height,
        duration_s=emitter.duration_s(buffer.time_base, job.info.frame_rate),
        notes=notes + _decode_error_notes(buffer),
    )


def _make_buffer(job: _Job) -> StreamingFrameBuffer:
    spec = job.upscaler.lq_spec(job.geometry, high_bit_depth=job.params.codec == "hevc10")
    width = spec.width or job.info.width
    height = spec.height or job.info.height
    layout = _array_layout(spec, width, height)

    def open_reader() -> FrameReader:
        return FrameReader(
            str(job.input_path),
            job.info,
            width=spec.width,
            height=spec.height,
            pix_fmt=spec.pix_fmt,
            interpolation=spec.interpolation,
        )

    options = job.options
    window = job.upscaler.window
    try:
        return StreamingFrameBuffer(
            open_reader,
            frame_nbytes=layout.nbytes if layout else _video_frame_nbytes(width, height, spec.pix_fmt),
            limits=BufferLimits(options.decode_threads, options.prefetch_frames, options.lq_max_bytes),
            max_window=max(window.first, window.step),
            transform=_to_array if spec.to_array else None,
            array_layout=layout,
            stop_at_decode_error=job.params.keep_partial_on_decode_error,
        )
    except BufferTooSmallError as exc:
        raise ModelError(
            "The frame buffer limit is too small for this video and variant; ask the operator to raise it.",
            detail=str(exc),
        ) from exc


def _array_layout(spec: LQSpec, width: int, height: int) -> ArrayLayout | None:
    if not spec.to_array:
        return None
    dtype = np.uint16 if spec.pix_fmt in ("rgb48le", "rgb48be") else np.uint8
    return ArrayLayout((height, width, 3), np.dtype(dtype))


def _video_frame_nbytes(width: int, height: int, pix_fmt: str) -> int:
    sample = av.VideoFrame(width, height, pix_fmt)
    return sum(plane.buffer_size for plane in sample.planes)


def _to_array(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray()


def _open_writer(job: _Job) -> VideoWriter:
    geometry = job.geometry
    try:
        return VideoWriter(
            str(job.output_path),
            job.info,
            geometry.width,
            geometry.height,
            job.params,
            source_path=str(job.input_path),
        )
    except OSError as exc:
        raise _output_error_for(exc) from exc


def _as_output_error(exc: BaseException, encoder: EncoderStage) -> OutputError | None:
    if isinstance(exc, OSError) and (exc.errno == errno.ENOSPC or exc is encoder.error):
        return _output_error_for(exc)
    return None


def _output_error_for(exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(
            "The disk holding the results is full, so the result could not be written. "
            "Free some space or ask the operator, then retry the task.",
            detail=str(exc),
        )
    return OutputError(
        "Writing the result failed. Retry the task; if it fails again, "
        "ask the operator to check the results folder.",
        detail=str(exc),
    )


def _decode_error_notes(buffer: StreamingFrameBuffer) -> list[str]:
    error = buffer.decode_error
    if error is None:
        return []
    return [
        f"The input could not be decoded from frame {error.frame_index} on; "
        f"the result holds the {error.frame_index} frames before it."
    ]


class _Emitter:
    """Receives output frames from the upscaler, pairs them with source timestamps and queues them."""

    def __init__(
        self, buffer: StreamingFrameBuffer, encoder: EncoderStage, progress: ProgressReporter
    ) -> None:
        self._buffer = buffer
        self._encoder = encoder
        self._progress = progress
        self.count = 0
        self.first_pts: int | None = None
        self.last_pts: int | None = None

    def emit(self, index: int, image: Any) -> None:
        if index != self.count:
            raise RuntimeError(f"upscaler emitted frame {index} where frame {self.count} was expected")
        pts = self._buffer.take_pts(index)
        self._encoder.submit(image, pts)
        if self.first_pts is None:
            self.first_pts = pts
        self.last_pts = pts
        self.count += 1
        self._progress.update(self.count, self._buffer.total)

    def check_complete(self) -> None:
        total = self._buffer.total
        if total is not None and self.count != total:
            raise RuntimeError(f"upscaler emitted {self.count} frames for {total} source frames")
        if self.count == 0:
            raise self._buffer.decode_error or DecodeError(
                "The input has no video frames that can be decoded. Check the file plays, or re-export it.",
                frame_index=0,
            )

    def duration_s(self, time_base: Fraction | None, frame_rate: tuple[int, int]) -> float:
        """Span of the output's timestamps plus one frame interval, in seconds."""
        numerator, denominator = frame_rate
        frame_interval = Fraction(denominator, numerator) if numerator else Fraction(0)
        if time_base is None or self.first_pts is None:
            return float(frame_interval * self.count)
        return float((self.last_pts - self.first_pts) * Fraction(time_base) + frame_interval)


class CancelGate:
    """Polls `should_cancel` before a window once `every_frames` frames have passed since the last poll."""

    def __init__(self, should_cancel: CancelCheck | None, every_frames: int = CANCEL_CHECK_FRAMES) -> None:
        self._should_cancel = should_cancel
        self._every_frames = every_frames
        self._last_checked: int | None = None

    def __call__(self, next_index: int) -> None:
        if self._should_cancel is None:
            return
        if self._last_checked is not None and next_index - self._last_checked < self._every_frames:
            return
        self._last_checked = next_index
        if self._should_cancel():
            log.info("Cancel requested before frame %d", next_index)
            raise Cancelled(f"cancelled before frame {next_index}")


@dataclass
class ProgressReporter:
    """Sends Progress at most once per `interval_s`, and always when asked for a final report."""

    callback: ProgressCallback | None
    expected_total: int
    interval_s: float = PROGRESS_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    _started: float = field(init=False)
    _last_sent: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def update(self, processed: int, known_total: int | None) -> None:
        if self.callback is None:
            return
        now = self.clock()
        if self._last_sent is not None and now - self._last_sent < self.interval_s:
            return
        self._send(now, processed, known_total, STAGE_UPSCALING)

    def report_now(self, processed: int, stage: str, total: int | None = None) -> None:
        if self.callback is not None:
            self._send(self.clock(), processed, total, stage)

    def _send(self, now: float, processed: int, known_total: int | None, stage: str) -> None:
        total = known_total if known_total is not None else max(self.expected_total, processed)
        elapsed = now - self._started
        fps = processed / elapsed if elapsed > 0 else 0.0
        eta = (total - processed) / fps if fps > 0 else None
        self._last_sent = now
        self.callback(Progress(processed, total, fps, eta, stage))


class PreviewWriter:
    """Saves a small JPEG of an output frame at most once per `interval_s`, replacing the file atomically."""

    def __init__(
        self, path: str | None, interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = Path(path) if path else None
        self._interval_s = interval_s
        self._clock = clock
        self._last_written: float | None = None

    def offer(self, image: Any) -> None:
        if self._path is None:
            return
        now = self._clock()
        if self._last_written is not None and now - self._last_written < self._interval_s:
            return
        self._last_written = now
        try:
            self._write(image)
        except (OSError, ValueError) as exc:
            # A preview is optional: the run goes on without it, and a full disk fails the encoder anyway.
            log.warning("Writing the preview %s failed, previews are off for this run: %s", self._path, exc)
            self._path = None

    def _write(self, image: Any) -> None:
        picture = _to_pil_image(image)
        picture.thumbnail((PREVIEW_MAX_WIDTH, PREVIEW_MAX_WIDTH))
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=self._path.parent, prefix=".preview-", suffix=".jpg")
        try:
            with os.fdopen(handle, "wb") as stream:
                picture.save(stream, format="JPEG", quality=85)
            os.replace(temp_name, self._path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def _to_pil_image(image: Any):
    from PIL import Image

    if isinstance(image, av.VideoFrame):
        return image.to_image()
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    return Image.fromarray(array)
