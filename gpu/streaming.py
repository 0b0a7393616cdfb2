"""A streaming buffer of prepared source frames that decodes ahead on threads and frees frames per window.

One reader thread decodes frames in order, and worker threads apply the per-frame transform (for FlashVSR, the
conversion to an RGB array) in parallel. The reader stays at most `prefetch_frames` ahead of the highest frame
the consumer has requested. With a byte cap it also keeps at most `max_bytes // frame_nbytes` frames, in
slots allocated once. The stream ends where the decoder ends, whatever frame count the container declared.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import av
import numpy as np

from gpu.params import DecodeError
from gpu.upscalers.base import SourceFrame

log = logging.getLogger(__name__)


class Decoded(Protocol):
    """A decoded frame with its timestamp, as `gpu.video.decode.DecodedFrame` provides it."""

    pts: int
    frame: Any


ReaderFactory = Callable[[], AbstractContextManager[Iterable[Decoded]]]
FrameTransform = Callable[[Any], Any]


class BufferTooSmallError(ValueError):
    """The byte cap has room for fewer frames than one window of the upscaler needs."""


@dataclass(frozen=True)
class ArrayLayout:
    """Shape and dtype of the arrays the transform returns, so slots can be allocated once."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class BufferLimits:
    """Thread count and memory bounds. `max_bytes` 0 means no byte cap: the reader waits at prefetch depth."""

    decode_threads: int = 2
    prefetch_frames: int = 32
    max_bytes: int = 0

    def slot_count(self, frame_nbytes: int) -> int | None:
        if self.max_bytes <= 0:
            return None
        return self.max_bytes // max(1, frame_nbytes)


class StreamingFrameBuffer:
    """Source frames prepared ahead of the consumer; implements `gpu.upscalers.base.FrameSource`.

    Use it as a context manager: entering starts the threads, leaving joins every one of them. An error in
    the reader or a worker is raised from the consumer's next `get`. With `stop_at_decode_error`, a
    `DecodeError` ends the stream at the frame that failed and is kept in `decode_error` instead.
    """

    def __init__(
        self,
        open_reader: ReaderFactory,
        *,
        frame_nbytes: int,
        limits: BufferLimits,
        max_window: int,
        transform: FrameTransform | None = None,
        array_layout: ArrayLayout | None = None,
        stop_at_decode_error: bool = False,
    ) -> None:
        self._open_reader = open_reader
        self._transform = transform
        self._frame_nbytes = frame_nbytes
        self._prefetch = max(1, limits.prefetch_frames)
        self._slot_count = limits.slot_count(frame_nbytes)
        self._check_cap(limits, max_window)
        self._slots = self._allocate_slots(array_layout)
        self._worker_count = max(1, limits.decode_threads) if transform is not None else 0
        self._stop_at_decode_error = stop_at_decode_error

        self._cond = threading.Condition()
        self._ready: dict[int, Any] = {}
        self._pts: dict[int, int] = {}
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._dispatched = 0
        self._released = 0
        self._delivered = 0
        self._demand = 0
        self._total: int | None = None
        self._error: BaseException | None = None
        self._closing = False
        self.time_base = None
        self.decode_error: DecodeError | None = None
        self.peak_held_frames = 0

    def _check_cap(self, limits: BufferLimits, max_window: int) -> None:
        if self._slot_count is None or self._slot_count >= max_window:
            return
        needed = max_window * self._frame_nbytes
        raise BufferTooSmallError(
            f"FLASHVSR_STREAMING_LQ_MAX_BYTES={limits.max_bytes} has room for {self._slot_count} frames of "
            f"{self._frame_nbytes} bytes, but this variant reads {max_window} frames at once. "
            f"Set it to at least {needed} or to 0 (no cap)."
        )

    def _allocate_slots(self, layout: ArrayLayout | None) -> np.ndarray | None:
        if self._slot_count is None or layout is None or self._transform is None:
            return None
        return np.empty((self._slot_count, *layout.shape), dtype=layout.dtype)

    # Lifecycle

    def __enter__(self) -> StreamingFrameBuffer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        reader = threading.Thread(target=self._read_stream, name="lq-reader", daemon=True)
        self._threads.append(reader)
        for number in range(self._worker_count):
            worker = threading.Thread(target=self._transform_frames, name=f"lq-worker-{number}", daemon=True)
            self._threads.append(worker)
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop and join every thread; safe to call more than once and after an error."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._ready.clear()

    # Consumer side (FrameSource)

    @property
    def total(self) -> int | None:
        with self._cond:
            return self._total

    @property
    def held_frames(self) -> int:
        with self._cond:
            return self._dispatched - self._released

    @property
    def slot_count(self) -> int | None:
        return self._slot_count

    def get(self, start: int, stop: int) -> list[SourceFrame]:
        """Return frames `start`..`stop-1` once ready; fewer only when the stream ends before `stop`."""
        with self._cond:
            self._check_request(start, stop)
            self._demand = max(self._demand, stop)
            self._cond.notify_all()
            while True:
                self._raise_if_failed()
                end = stop if self._total is None else min(stop, self._total)
                if all(index in self._ready for index in range(start, end)):
                    self._delivered = max(self._delivered, end)
                    return [SourceFrame(index, self._ready[index]) for index in range(start, end)]
                self._cond.wait()

    def _check_request(self, start: int, stop: int) -> None:
        if start < self._released:
            raise ValueError(f"frames before {self._released} were released; cannot get frame {start}")
        if self._slot_count is not None and stop - self._released > self._slot_count:
            raise ValueError(
                f"frames {self._released}..{stop - 1} exceed the {self._slot_count} slots of the byte cap; "
                "release earlier frames first"
            )

    def release_until(self, index: int) -> None:
        """Free every frame before `index`; only frames already returned by `get` can be released."""
        with self._cond:
            if index > self._delivered:
                raise ValueError(
                    f"cannot release up to frame {index}: only {self._delivered} frames were delivered"
                )
            for released in range(self._released, index):
                self._ready.pop(released, None)
            self._released = max(self._released, index)
            self._cond.notify_all()

    def take_pts(self, index: int) -> int:
        """Return and forget the presentation timestamp of source frame `index` (in `time_base` units)."""
        with self._cond:
            return self._pts.pop(index)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # Reader thread

    def _read_stream(self) -> None:
        count = 0
        try:
            with self._open_reader() as reader:
                frames = iter(reader)
                while self._wait_for_room(count):
                    decoded = next(frames, None)
                    if decoded is None:
                        self._end_stream(count)
                        break
                    self._dispatch(count, decoded)
                    count += 1
        except DecodeError as exc:
            self._stop_on_decode_error(exc, count)
        except av.error.FFmpegError as exc:
            message = (
                f"The input could not be decoded at frame {count}. The file may be damaged; "
                "re-export it or upload another copy."
            )
            self._stop_on_decode_error(DecodeError(message, frame_index=count, detail=str(exc)), count)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which re-raises it
            self._fail(exc)
        finally:
            for _ in range(self._worker_count):
                self._jobs.put(None)

    def _stop_on_decode_error(self, exc: DecodeError, count: int) -> None:
        if not self._stop_at_decode_error:
            self._fail(exc)
            return
        log.warning("Decoding stopped at frame %d; keeping the frames before it: %s", exc.frame_index, exc)
        self.decode_error = exc
        self._end_stream(min(count, exc.frame_index))

    def _wait_for_room(self, index: int) -> bool:
        with self._cond:
            while not self._closing and self._error is None:
                ahead_ok = index < self._demand + self._prefetch
                slots_ok = self._slot_count is None or index - self._released < self._slot_count
                if ahead_ok and slots_ok:
                    return True
                self._cond.wait()
            return False

    def _dispatch(self, index: int, decoded: Decoded) -> None:
        with self._cond:
            if self.time_base is None:
                self.time_base = getattr(decoded, "time_base", None)
            self._pts[index] = decoded.pts
            self._dispatched = index + 1
            self.peak_held_frames = max(self.peak_held_frames, self._dispatched - self._released)
            if self._transform is None:
                self._store(index, decoded.frame)
                return
        self._jobs.put((index, decoded.frame))

    def _end_stream(self, count: int) -> None:
        with self._cond:
            self._total = count
            self._cond.notify_all()
        log.debug("Source stream ended after %d frames", count)

    # Worker threads

    def _transform_frames(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            index, frame = job
            if self._closing or self._error is not None:
                continue
            try:
                prepared = self._transform(frame)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which re-raises it
                self._fail(exc)
                continue
            stored = self._into_slot(index, prepared)
            with self._cond:
                self._store(index, stored)

    def _into_slot(self, index: int, prepared: Any) -> Any:
        if self._slots is None:
            return prepared
        slot = self._slots[index % len(self._slots)]
        np.copyto(slot, prepared)
        return slot

    def _store(self, index: int, prepared: Any) -> None:
        # Caller holds self._cond.
        if index >= self._released:
            self._ready[index] = prepared
        self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
            self._cond.notify_all()
