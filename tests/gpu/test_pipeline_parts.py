"""Progress throttling, cancel polling, previews and the upscaler registry, without a real video."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import av
import numpy as np
import pytest
from PIL import Image

from gpu import upscalers
from gpu.api import CancelGate, PreviewWriter, ProgressReporter
from gpu.geometry import OutputGeometry
from gpu.params import Cancelled, ModelError, RuntimeOptions
from gpu.streaming import BufferLimits, StreamingFrameBuffer
from gpu.upscalers import get_upscaler
from gpu.upscalers.lanczos import LanczosUpscaler


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeDecoded:
    index: int
    pts: int
    frame: np.ndarray


def counting_frames(count: int):
    @contextlib.contextmanager
    def open_reader():
        yield (FakeDecoded(i, i, np.zeros((2, 2, 3), np.uint8)) for i in range(count))

    return open_reader


def test_progress_sent_at_most_once_per_second():
    clock = FakeClock()
    reports = []
    reporter = ProgressReporter(reports.append, expected_total=500, clock=clock)
    for processed in range(1, 501):
        clock.now = processed * 0.01
        reporter.update(processed, None)
    reporter.report_now(500, "done", total=500)
    times = [report.processed_frames * 0.01 for report in reports[:-1]]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert len(reports) == 6
    assert min(gaps) >= 1.0
    assert reports[-1].processed_frames == 500
    assert reports[-1].total_frames == 500
    assert reports[-1].stage == "done"


def test_progress_measures_fps_and_eta():
    clock = FakeClock()
    reports = []
    reporter = ProgressReporter(reports.append, expected_total=100, clock=clock)
    clock.now = 2.0
    reporter.update(50, None)
    assert reports[0].frames_per_second == pytest.approx(25.0)
    assert reports[0].eta_seconds == pytest.approx(2.0)
    assert reports[0].fraction == pytest.approx(0.5)


def test_progress_total_grows_past_wrong_estimate():
    clock = FakeClock()
    reports = []
    reporter = ProgressReporter(reports.append, expected_total=10, clock=clock)
    clock.now = 1.0
    reporter.update(15, None)
    assert reports[0].total_frames == 15
    clock.now = 3.0
    reporter.update(16, 40)
    assert reports[1].total_frames == 40


def test_cancel_stops_lanczos_within_one_window():
    emitted = []
    calls = []

    def should_cancel():
        calls.append(len(emitted))
        return len(emitted) >= 20

    before = set(threading.enumerate())
    buffer = StreamingFrameBuffer(
        counting_frames(1000), frame_nbytes=12, limits=BufferLimits(prefetch_frames=8), max_window=1
    )
    with buffer, pytest.raises(Cancelled):
        LanczosUpscaler().run(
            buffer, OutputGeometry(2, 2, 2), lambda i, image: emitted.append(i), CancelGate(should_cancel)
        )
    assert 20 <= len(emitted) <= 20 + 8
    assert calls == list(range(0, len(emitted) + 1, 8))
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_cancel_gate_without_check_never_cancels():
    gate = CancelGate(None)
    for index in range(100):
        gate(index)


def test_preview_written_atomically_and_throttled(tmp_path):
    clock = FakeClock()
    path = tmp_path / "previews" / "task.jpg"
    writer = PreviewWriter(str(path), interval_s=5.0, clock=clock)
    red = av.VideoFrame.from_ndarray(np.full((720, 1280, 3), (255, 0, 0), np.uint8), format="rgb24")
    blue = np.full((720, 1280, 3), (0, 0, 255), np.uint8)

    writer.offer(red.reformat(format="yuv420p"))
    clock.now = 1.0
    writer.offer(blue)
    with Image.open(path) as first:
        assert first.size == (640, 360)
        assert first.getpixel((10, 10))[0] > 200
    clock.now = 5.5
    writer.offer(blue)
    with Image.open(path) as second:
        assert second.getpixel((10, 10))[2] > 200
    assert sorted(p.name for p in path.parent.iterdir()) == ["task.jpg"]


def test_preview_failure_turns_previews_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = PreviewWriter(str(blocker / "preview.jpg"), interval_s=0.0)
    writer.offer(np.zeros((8, 8, 3), np.uint8))
    writer.offer(np.zeros((8, 8, 3), np.uint8))
    assert blocker.read_text() == "not a folder"


def test_registry_builds_lanczos():
    upscaler = get_upscaler("lanczos", RuntimeOptions())
    assert upscaler.label == "Lanczos baseline (no model)"


def test_registry_rejects_unwired_variant(monkeypatch):
    monkeypatch.delitem(upscalers._FACTORIES, "full")
    with pytest.raises(ModelError, match="not available"):
        get_upscaler("full", RuntimeOptions())
