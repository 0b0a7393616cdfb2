"""The encoder stage: output frames go through a bounded queue to a thread that owns the video writer.

The queue lets the upscaler and the encoder work at the same time with at most `queue_frames` output frames
waiting in memory. When the encoder falls behind, `submit` blocks.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
_END = object()


class FrameWriter(Protocol):
    """The writer interface the stage drives, which `gpu.video.encode.VideoWriter` implements."""

    def write(self, frame: Any, pts: int) -> None: ...

    def finish(self) -> list[str]: ...

    def abort(self) -> None: ...


class EncoderStage:
    """Runs `writer.write` on its own thread; an error there is raised from the next `submit` or `finish`.

    `on_written(frame)` is called on the encoder thread after each frame is written (used for previews).
    """

    def __init__(
        self,
        writer: FrameWriter,
        *,
        queue_frames: int,
        on_written: Callable[[Any], None] | None = None,
    ) -> None:
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_frames))
        self._on_written = on_written
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._encode_frames, name="encoder", daemon=True)
        self.frames_written = 0
        self._started = False
        self._ended = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def submit(self, frame: Any, pts: int) -> None:
        """Queue one frame for encoding, waiting while the queue is full."""
        while True:
            self._raise_if_failed()
            try:
                self._queue.put((frame, pts), timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def finish(self) -> list[str]:
        """Wait for every queued frame to be written, then finish the writer and return its notes."""
        self.submit_end()
        self._thread.join()
        self._raise_if_failed()
        return self._writer.finish()

    def submit_end(self) -> None:
        while self._thread.is_alive():
            self._raise_if_failed()
            try:
                self._queue.put(_END, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def abort(self) -> None:
        """Stop the thread without writing what is queued and remove every partial output file."""
        self._stopping.set()
        self._drain()
        if self._thread.is_alive():
            self._thread.join()
        self._writer.abort()

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error
        if self._started and not self._thread.is_alive() and not self._ended:
            raise RuntimeError("the encoder thread stopped before the end of the stream")

    def _encode_frames(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if item is _END:
                self._ended = True
                return
            frame, pts = item
            try:
                self._writer.write(frame, pts)
                self.frames_written += 1
                if self._on_written is not None:
                    self._on_written(frame)
            except BaseException as exc:  # noqa: BLE001 - raised again on the submitting thread
                self.error = exc
                return
