"""Streaming buffer: prefetch depth, byte cap, release, real end of stream, errors from every thread."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from gpu.params import DecodeError
from gpu.streaming import ArrayLayout, BufferLimits, BufferTooSmallError, StreamingFrameBuffer
from gpu.upscalers.base import FLASHVSR_WINDOW, LANCZOS_WINDOW, read_windows

FRAME_SHAPE = (4, 6, 3)
FRAME_NBYTES = int(np.prod(FRAME_SHAPE))


@dataclass
class FakeDecoded:
    index: int
    pts: int
    frame: np.ndarray


class FakeReader:
    """Yields `count` small frames whose pixels all equal the frame index; counts frames pulled."""

    def __init__(self, count: int, *, fail_at: int | None = None, error: Exception | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.error = error
        self.pulled = 0
        self.closed = False

    @contextlib.contextmanager
    def open(self):
        try:
            yield self._frames()
        finally:
            self.closed = True

    def _frames(self):
        for index in range(self.count):
            if index == self.fail_at:
                raise self.error
            self.pulled += 1
            yield FakeDecoded(index, 1000 + 3 * index, np.full(FRAME_SHAPE, index % 256, dtype=np.uint8))


def no_wait(_):
    return None


def make_buffer(
    reader: FakeReader,
    *,
    prefetch=4,
    max_bytes=0,
    threads=2,
    window=1,
    transform=None,
    layout=None,
    stop_at_decode_error=False,
) -> StreamingFrameBuffer:
    return StreamingFrameBuffer(
        reader.open,
        frame_nbytes=FRAME_NBYTES,
        limits=BufferLimits(decode_threads=threads, prefetch_frames=prefetch, max_bytes=max_bytes),
        max_window=window,
        transform=transform,
        array_layout=layout,
        stop_at_decode_error=stop_at_decode_error,
    )


def wait_until_stable(read, settle_s=0.2, timeout_s=5.0):
    """Return read() once it stopped changing for settle_s seconds."""
    deadline = time.monotonic() + timeout_s
    value = read()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        current = read()
        if current != value:
            value, stable_since = current, time.monotonic()
        elif time.monotonic() - stable_since >= settle_s:
            return value
    raise AssertionError(f"value kept changing: {value}")


@pytest.fixture
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    leaked = [thread.name for thread in threading.enumerate() if thread not in before and thread.is_alive()]
    assert leaked == []


def test_reader_stops_at_prefetch_depth(no_leaked_threads):
    reader = FakeReader(100)
    with make_buffer(reader, prefetch=5) as buffer:
        assert wait_until_stable(lambda: reader.pulled) == 5
        buffer.get(0, 3)
        assert wait_until_stable(lambda: reader.pulled) == 8
        buffer.release_until(3)
        assert wait_until_stable(lambda: reader.pulled) == 8


def test_frames_come_back_in_order_with_pts(no_leaked_threads):
    reader = FakeReader(10)
    with make_buffer(reader, transform=lambda frame: frame + 1) as buffer:
        frames = buffer.get(0, 10)
        assert [frame.index for frame in frames] == list(range(10))
        assert [int(frame.image[0, 0, 0]) for frame in frames] == [index + 1 for index in range(10)]
        assert [buffer.take_pts(index) for index in range(10)] == [1000 + 3 * index for index in range(10)]


def test_byte_cap_limits_held_frames(no_leaked_threads):
    reader = FakeReader(60)
    cap = 3 * FRAME_NBYTES + 10
    layout = ArrayLayout(FRAME_SHAPE, np.dtype(np.uint8))
    values = []
    with make_buffer(
        reader, prefetch=20, max_bytes=cap, window=2, transform=np.copy, layout=layout
    ) as buffer:
        assert buffer.slot_count == 3
        assert wait_until_stable(lambda: reader.pulled) == 3
        for start in range(0, 60, 2):
            frames = buffer.get(start, start + 2)
            values.extend(int(frame.image[0, 0, 0]) for frame in frames)
            buffer.release_until(start + 2)
        assert buffer.peak_held_frames * FRAME_NBYTES <= cap
    assert values == list(range(60))


def test_byte_cap_smaller_than_window_is_rejected():
    with pytest.raises(BufferTooSmallError, match=f"at least {3 * FRAME_NBYTES}"):
        make_buffer(FakeReader(10), max_bytes=2 * FRAME_NBYTES, window=3)


def test_release_until_frees_frames(no_leaked_threads):
    reader = FakeReader(20)
    with make_buffer(reader, prefetch=4) as buffer:
        buffer.get(0, 6)
        wait_until_stable(lambda: reader.pulled)
        held_before = buffer.held_frames
        buffer.release_until(6)
        assert buffer.held_frames == held_before - 6
        with pytest.raises(ValueError, match="released"):
            buffer.get(5, 7)


def test_release_beyond_delivered_frames_is_rejected(no_leaked_threads):
    with make_buffer(FakeReader(20)) as buffer:
        buffer.get(0, 2)
        with pytest.raises(ValueError, match="only 2 frames were delivered"):
            buffer.release_until(5)


@pytest.mark.parametrize("real_count", [1, 7, 21, 25, 26, 30, 33])
def test_windows_cover_real_stream_end(real_count, no_leaked_threads):
    # The buffer is never given the container's frame count, so a wrong count cannot change what is read.
    reader = FakeReader(real_count)
    with make_buffer(reader, prefetch=8, transform=np.copy) as buffer:
        windows = list(read_windows(buffer, FLASHVSR_WINDOW, no_wait))
        assert buffer.total == real_count
    read = sum(window.real_count for window in windows)
    padded_length = sum(len(window.frames) for window in windows)
    last_value = (real_count - 1) % 256
    padding_values = {int(f.image[0, 0, 0]) for w in windows for f in w.frames[w.real_count :]}
    assert read == real_count
    assert padded_length >= real_count + FLASHVSR_WINDOW.lookahead
    assert padded_length - len(windows[-1].frames) < real_count + FLASHVSR_WINDOW.lookahead
    assert [len(window.frames) for window in windows][0] == 25
    assert padding_values <= {last_value}


def test_empty_stream_yields_no_window(no_leaked_threads):
    with make_buffer(FakeReader(0)) as buffer:
        assert list(read_windows(buffer, LANCZOS_WINDOW, no_wait)) == []
        assert buffer.total == 0


def test_decode_error_reaches_consumer_fast(no_leaked_threads):
    error = DecodeError("broken", frame_index=5)
    reader = FakeReader(50, fail_at=5, error=error)
    started = time.monotonic()
    with make_buffer(reader, prefetch=50, threads=2, transform=np.copy) as buffer:
        with pytest.raises(DecodeError) as raised:
            buffer.get(0, 50)
    assert raised.value is error
    assert time.monotonic() - started < 2.0
    assert reader.closed


def test_decode_error_can_end_stream_instead(no_leaked_threads):
    error = DecodeError("broken", frame_index=5)
    with make_buffer(FakeReader(50, fail_at=5, error=error), stop_at_decode_error=True) as buffer:
        frames = buffer.get(0, 50)
        assert len(frames) == 5
        assert buffer.total == 5
        assert buffer.decode_error is error


def test_transform_error_reaches_consumer(no_leaked_threads):
    def transform(frame):
        if frame[0, 0, 0] == 3:
            raise ValueError("bad frame 3")
        return frame

    with make_buffer(FakeReader(30), prefetch=30, transform=transform) as buffer:
        with pytest.raises(ValueError, match="bad frame 3"):
            buffer.get(0, 30)


def test_close_while_reader_waits_joins_threads(no_leaked_threads):
    reader = FakeReader(1000)
    buffer = make_buffer(reader, prefetch=3, transform=np.copy)
    buffer.start()
    buffer.get(0, 1)
    buffer.close()
    buffer.close()
    assert reader.closed
    assert reader.pulled < 10
