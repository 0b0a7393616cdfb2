"""Encoder stage: frames written in order on its own thread, errors raised to the caller, abort cleans up."""

from __future__ import annotations

import threading
import time

import pytest

from gpu.encoding import EncoderStage


class RecordingWriter:
    def __init__(self, *, fail_at: int | None = None, delay_s: float = 0.0) -> None:
        self.written: list[tuple[int, int]] = []
        self.fail_at = fail_at
        self.delay_s = delay_s
        self.finished = False
        self.aborted = False
        self.threads: set[str] = set()

    def write(self, frame, pts):
        self.threads.add(threading.current_thread().name)
        if len(self.written) == self.fail_at:
            raise OSError(28, "No space left on device")
        time.sleep(self.delay_s)
        self.written.append((frame, pts))

    def finish(self):
        self.finished = True
        return ["note from writer"]

    def abort(self):
        self.aborted = True


def test_encoder_writes_every_frame_in_order():
    writer = RecordingWriter()
    seen = []
    stage = EncoderStage(writer, queue_frames=2, on_written=seen.append)
    stage.start()
    for index in range(20):
        stage.submit(index, 100 + index)
    notes = stage.finish()
    assert writer.written == [(index, 100 + index) for index in range(20)]
    assert seen == list(range(20))
    assert writer.threads == {"encoder"}
    assert notes == ["note from writer"]
    assert writer.finished


def test_encoder_queue_bounds_frames_in_flight():
    writer = RecordingWriter(delay_s=0.05)
    stage = EncoderStage(writer, queue_frames=3)
    stage.start()
    started = time.monotonic()
    for index in range(8):
        stage.submit(index, index)
    # 8 submits into a queue of 3 wait for at least 4 slow writes to finish.
    assert time.monotonic() - started >= 4 * 0.05
    stage.finish()
    assert len(writer.written) == 8


def test_encoder_error_raised_on_submit():
    writer = RecordingWriter(fail_at=3)
    stage = EncoderStage(writer, queue_frames=2)
    stage.start()
    with pytest.raises(OSError, match="No space left") as raised:
        for index in range(100):
            stage.submit(index, index)
    assert raised.value is stage.error
    stage.abort()
    assert writer.aborted
    assert not writer.finished


def test_encoder_error_raised_on_finish():
    writer = RecordingWriter(fail_at=1)
    stage = EncoderStage(writer, queue_frames=10)
    stage.start()
    stage.submit(0, 0)
    stage.submit(1, 1)
    with pytest.raises(OSError):
        stage.finish()
    assert not writer.finished


def test_encoder_abort_drops_queue_and_joins():
    writer = RecordingWriter(delay_s=0.05)
    stage = EncoderStage(writer, queue_frames=10)
    stage.start()
    for index in range(10):
        stage.submit(index, index)
    stage.abort()
    assert writer.aborted
    assert len(writer.written) < 10
    assert "encoder" not in {thread.name for thread in threading.enumerate()}


def test_encoder_callback_error_raised_on_submit():
    def broken_preview(frame):
        raise KeyError("preview state")

    stage = EncoderStage(RecordingWriter(), queue_frames=2, on_written=broken_preview)
    stage.start()
    with pytest.raises(KeyError, match="preview state"):
        for index in range(100):
            stage.submit(index, index)
    stage.abort()
