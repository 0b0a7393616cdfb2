"""The protocol every upscaler variant implements, and the window reading they share.

An upscaler pulls prepared source frames from a `FrameSource` in windows and emits output frames in source
order through an `EmitFrame` callback. The streaming buffer prepares each decoded frame as the upscaler's
`LQSpec` describes. That lets one buffer serve both the Lanczos baseline, whose frames the decoder's filter
graph already scales, and FlashVSR, which takes RGB arrays at the source size and upscales them on the GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gpu.geometry import OutputGeometry


@dataclass(frozen=True)
class LQSpec:
    """The preparation the streaming buffer applies to each decoded frame before the upscaler reads it.

    `width`/`height`/`pix_fmt`/`interpolation` configure the decoder's filter graph (None keeps the displayed
    source size). With `to_array` the buffer's worker threads convert each frame to an H x W x C numpy array.
    """

    width: int | None
    height: int | None
    pix_fmt: str
    interpolation: str = "lanczos"
    to_array: bool = False


@dataclass(frozen=True)
class WindowRule:
    """How many source frames an upscaler consumes per step.

    `lookahead` is how many frames past the last real frame the model must still read before its output
    covers every real frame (FlashVSR's output lags its input by 4 frames).
    """

    first: int
    step: int
    lookahead: int = 0

    def size_at(self, start: int) -> int:
        return self.first if start == 0 else self.step


LANCZOS_WINDOW = WindowRule(first=1, step=1)
# FlashVSR's first streaming step reads 25 LQ frames, every later step 8, and its output trails by 4 frames.
FLASHVSR_WINDOW = WindowRule(first=25, step=8, lookahead=4)


@dataclass(frozen=True)
class SourceFrame:
    """One prepared source frame: its 0-based index and an `av.VideoFrame` or numpy array."""

    index: int
    image: Any


class FrameSource(Protocol):
    """Prepared source frames in presentation order, read in ranges and released when no longer needed."""

    @property
    def total(self) -> int | None:
        """The real number of frames, or None while the end of the stream has not been reached."""

    def get(self, start: int, stop: int) -> list[SourceFrame]:
        """Return frames `start`..`stop-1` once they are ready, fewer only at the end of the stream."""

    def release_until(self, index: int) -> None:
        """Drop every frame before `index`; a later `get` of those frames raises ValueError."""


EmitFrame = Callable[[int, Any], None]
"""Receives `(source_index, image)` for each output frame, in source order, where `image` is an
`av.VideoFrame` or an H x W x 3 RGB numpy array (uint8, or uint16 for high bit depth)."""

CancelHook = Callable[[int], None]
"""Called with the index of the next source frame before each window; raises `gpu.params.Cancelled`."""


class Upscaler(Protocol):
    """A variant that turns source frames into output frames `scale` times larger."""

    label: str
    window: WindowRule

    def lq_spec(self, geometry: OutputGeometry, *, high_bit_depth: bool) -> LQSpec:
        """Describe how the buffer must prepare each decoded frame for this upscaler."""

    def run(
        self, source: FrameSource, geometry: OutputGeometry, emit: EmitFrame, check_cancel: CancelHook
    ) -> None:
        """Consume every frame of `source` and emit one output frame per real source frame, in order."""


@dataclass(frozen=True)
class Window:
    """One step's input: `frames` padded to the window size, of which the first `real_count` are real."""

    start: int
    frames: list[SourceFrame]
    real_count: int

    @property
    def real_frames(self) -> list[SourceFrame]:
        return self.frames[: self.real_count]


def read_windows(source: FrameSource, rule: WindowRule, check_cancel: CancelHook) -> Iterator[Window]:
    """Yield the windows of `rule` until the stream and its lookahead are covered.

    Windows past the end of the stream are padded with copies of the last real frame, and frames of a window
    stay valid only until the next window is requested, because the previous window is released then.
    """
    start = 0
    last_frame: SourceFrame | None = None
    while True:
        total = source.total
        if total is not None and start >= total + rule.lookahead:
            return
        check_cancel(start)
        size = rule.size_at(start)
        frames = source.get(start, start + size)
        if frames:
            last_frame = _detached_copy(frames[-1])
        elif last_frame is None:
            return
        real_count = len(frames)
        padding = [SourceFrame(start + real_count + i, last_frame.image) for i in range(size - real_count)]
        yield Window(start, frames + padding, real_count)
        if real_count:
            source.release_until(start + real_count)
        start += size


def _detached_copy(frame: SourceFrame) -> SourceFrame:
    # Buffer slots are reused once released, so a frame kept for padding must own its pixels.
    if isinstance(frame.image, np.ndarray):
        return SourceFrame(frame.index, frame.image.copy())
    return frame
