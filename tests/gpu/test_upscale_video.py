"""upscale_video end to end on generated clips: the Lanczos baseline and a windowed model stand-in."""

from __future__ import annotations

import dataclasses
import errno
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from gpu.api import upscale_video
from gpu.params import Cancelled, DecodeError, ModelError, OutputError, RuntimeOptions, UpscaleParams
from gpu.upscalers.base import FLASHVSR_WINDOW, LQSpec, read_windows
from gpu.video.decode import FrameReader
from gpu.video.encode import VideoWriter
from gpu.video.probe import probe

LANCZOS_2X = UpscaleParams(variant="lanczos", scale=2, preset="ultrafast")


def frame_times(path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(frame.pts * stream.time_base) for frame in container.decode(stream)]


def video_size(path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def audio_durations(path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(stream.duration * stream.time_base) for stream in container.streams.audio]


@pytest.fixture
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    time.sleep(0.05)
    leaked = [thread.name for thread in threading.enumerate() if thread not in before and thread.is_alive()]
    assert leaked == []


def test_lanczos_keeps_frames_timestamps_audio(clip_factory, work_dir, no_leaked_threads):
    source = clip_factory(frames=30, rate=Fraction(30000, 1001), audio_seconds=1.5)
    output = work_dir / "out.mp4"

    result = upscale_video(source, output, LANCZOS_2X)

    source_times = frame_times(source)
    output_times = frame_times(output)
    assert result.frames == 30
    assert len(output_times) == 30
    assert output_times == pytest.approx(source_times, abs=1e-4)
    assert video_size(output) == (128, 96)
    assert (result.width, result.height) == (128, 96)
    assert result.duration_s == pytest.approx(30 * 1001 / 30000, abs=1e-3)
    assert audio_durations(output) == pytest.approx(audio_durations(source), abs=0.03)
    assert sorted(p.name for p in work_dir.iterdir()) == ["out.mp4", "source.mp4"]


def test_lanczos_rotated_clip_is_twice_displayed_size(clip_factory, work_dir):
    source = clip_factory(frames=5, size=(64, 48), rotation=90)
    output = work_dir / "out.mp4"

    result = upscale_video(source, output, LANCZOS_2X)

    assert video_size(output) == (96, 128)
    assert probe(output).rotation == 0
    assert result.frames == 5


@pytest.mark.parametrize("claimed_extra", [+12, -12])
def test_wrong_container_frame_count_uses_real_end(clip_factory, work_dir, claimed_extra):
    source = clip_factory(frames=20)
    info = probe(source)
    wrong = dataclasses.replace(info, frame_count=info.frame_count + claimed_extra, frame_count_exact=False)
    reports = []

    result = upscale_video(
        source, work_dir / "out.mp4", LANCZOS_2X, source_info=wrong, on_progress=reports.append
    )

    assert result.frames == 20
    assert len(frame_times(work_dir / "out.mp4")) == 20
    assert reports[-1].processed_frames == 20
    assert reports[-1].total_frames == 20


def test_progress_at_most_once_a_second_plus_final(clip_factory, work_dir):
    source = clip_factory(frames=60)
    stamps = []
    reports = []

    def record(progress):
        stamps.append(time.monotonic())
        reports.append(progress)

    def slow_cancel_check():
        time.sleep(0.2)
        return False

    upscale_video(
        source, work_dir / "out.mp4", LANCZOS_2X, on_progress=record, should_cancel=slow_cancel_check
    )

    upscaling = [t for t, r in zip(stamps, reports, strict=True) if r.stage == "upscaling"]
    gaps = [later - earlier for earlier, later in zip(upscaling, upscaling[1:], strict=False)]
    assert len(upscaling) >= 2
    assert min(gaps) >= 0.99
    assert reports[-1].stage == "done"
    assert reports[-1].processed_frames == 60
    assert reports[-1].fraction == 1.0
    assert reports[-1].frames_per_second > 0


def test_cancel_removes_partial_output(clip_factory, work_dir, no_leaked_threads):
    source = clip_factory(frames=80)
    checks = []

    def cancel_after_three_checks():
        checks.append(1)
        return len(checks) > 3

    with pytest.raises(Cancelled):
        upscale_video(source, work_dir / "out.mp4", LANCZOS_2X, should_cancel=cancel_after_three_checks)

    assert len(checks) == 4
    assert sorted(p.name for p in work_dir.iterdir()) == ["source.mp4"]


def test_disk_full_becomes_output_error(clip_factory, work_dir, monkeypatch, no_leaked_threads):
    source = clip_factory(frames=20)
    original_write = VideoWriter.write

    def write_until_full(self, frame, pts):
        if self.frames_written >= 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        original_write(self, frame, pts)

    monkeypatch.setattr(VideoWriter, "write", write_until_full)

    with pytest.raises(OutputError) as raised:
        upscale_video(source, work_dir / "out.mp4", LANCZOS_2X)

    assert "disk holding the results is full" in raised.value.user_message
    assert sorted(p.name for p in work_dir.iterdir()) == ["source.mp4"]


def test_preview_written_for_user(clip_factory, work_dir):
    source = clip_factory(frames=10)
    preview = work_dir / "previews" / "task.jpg"
    options = RuntimeOptions(preview_path=str(preview), preview_interval_s=0.0)

    upscale_video(source, work_dir / "out.mp4", LANCZOS_2X, options=options)

    with Image.open(preview) as picture:
        assert picture.format == "JPEG"
        assert picture.size == (128, 96)
    assert [p.name for p in preview.parent.iterdir()] == ["task.jpg"]


def test_byte_cap_run_matches_uncapped(clip_factory, work_dir):
    source = clip_factory(frames=15)
    frame_bytes = 128 * 96 * 3 // 2
    options = RuntimeOptions(lq_max_bytes=3 * frame_bytes + 100, prefetch_frames=8)

    result = upscale_video(source, work_dir / "out.mp4", LANCZOS_2X, options=options)

    assert result.frames == 15
    assert len(frame_times(work_dir / "out.mp4")) == 15


def test_byte_cap_below_one_frame_is_model_error(clip_factory, work_dir):
    source = clip_factory(frames=3)
    options = RuntimeOptions(lq_max_bytes=1000)

    with pytest.raises(ModelError, match="buffer limit is too small"):
        upscale_video(source, work_dir / "out.mp4", LANCZOS_2X, options=options)

    assert sorted(p.name for p in work_dir.iterdir()) == ["source.mp4"]


class RepeatingUpscaler:
    """A model stand-in with FlashVSR windows: RGB arrays in, output 4 frames behind, pixels repeated."""

    label = "test stand-in"
    window = FLASHVSR_WINDOW

    def lq_spec(self, geometry, *, high_bit_depth):
        return LQSpec(width=None, height=None, pix_fmt="rgb24", to_array=True)

    def run(self, source, geometry, emit, check_cancel):
        pending = []
        for window in read_windows(source, self.window, check_cancel):
            for frame in window.frames:
                enlarged = np.repeat(np.repeat(frame.image, geometry.scale, 0), geometry.scale, 1)
                pending.append((frame.index, enlarged))
            while len(pending) > self.window.lookahead:
                index, image = pending.pop(0)
                if source.total is None or index < source.total:
                    emit(index, image)
        for index, image in pending:
            if index < source.total:
                emit(index, image)


def mean_colours(path) -> list[tuple[int, int, int]]:
    with av.open(str(path)) as container:
        return [
            tuple(int(v) for v in frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0))
            for frame in container.decode(video=0)
        ]


@pytest.mark.parametrize("byte_cap_frames", [0, 26])
def test_array_upscaler_keeps_frame_order(clip_factory, work_dir, monkeypatch, byte_cap_frames):
    source = clip_factory(frames=30)
    monkeypatch.setattr("gpu.api.get_upscaler", lambda variant, options, params=None: RepeatingUpscaler())
    options = RuntimeOptions(lq_max_bytes=byte_cap_frames * 64 * 48 * 3, prefetch_frames=4)
    params = dataclasses.replace(LANCZOS_2X, variant="tiny_long")

    result = upscale_video(source, work_dir / "out.mp4", params, options=options)

    source_colours = mean_colours(source)
    output_colours = mean_colours(work_dir / "out.mp4")
    assert result.frames == 30
    assert len(output_colours) == 30
    assert frame_times(work_dir / "out.mp4") == pytest.approx(frame_times(source), abs=1e-4)
    for expected, actual in zip(source_colours, output_colours, strict=True):
        assert max(abs(e - a) for e, a in zip(expected, actual, strict=True)) <= 4


class BreakingReader:
    """Wraps the real FrameReader and raises DecodeError at frame `fail_at`, like a file damaged there."""

    fail_at = 10

    def __init__(self, *args, **kwargs):
        self._reader = FrameReader(*args, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._reader.close()

    def __iter__(self):
        for decoded in self._reader:
            if decoded.index == self.fail_at:
                raise DecodeError("damaged", frame_index=self.fail_at)
            yield decoded


def test_decode_error_fails_and_removes_output(clip_factory, work_dir, monkeypatch, no_leaked_threads):
    source = clip_factory(frames=20)
    monkeypatch.setattr("gpu.api.FrameReader", BreakingReader)

    with pytest.raises(DecodeError) as raised:
        upscale_video(source, work_dir / "out.mp4", LANCZOS_2X)

    assert raised.value.frame_index == 10
    assert sorted(p.name for p in work_dir.iterdir()) == ["source.mp4"]


def test_decode_error_can_keep_frames_before_it(clip_factory, work_dir, monkeypatch):
    source = clip_factory(frames=20)
    monkeypatch.setattr("gpu.api.FrameReader", BreakingReader)
    params = dataclasses.replace(LANCZOS_2X, keep_partial_on_decode_error=True)

    result = upscale_video(source, work_dir / "out.mp4", params)

    assert result.frames == 10
    assert len(frame_times(work_dir / "out.mp4")) == 10
    assert any("frame 10" in note for note in result.notes)


def mean_rgb_via_reader(path) -> np.ndarray:
    info = probe(path)
    with FrameReader(path, info) as reader:
        return np.mean([decoded.frame.to_ndarray().reshape(-1, 3).mean(axis=0) for decoded in reader], axis=0)


def test_lanczos_keeps_colours_of_untagged_hd(clip_factory, work_dir):
    # The output must decode to the source's colours; untagged sources of 720 lines and more read as BT.709.
    source = clip_factory(frames=3, size=(1280, 720), colour=(200, 40, 40))

    upscale_video(source, work_dir / "out.mp4", LANCZOS_2X)

    source_rgb = mean_rgb_via_reader(source)
    output_rgb = mean_rgb_via_reader(work_dir / "out.mp4")
    assert probe(source).color_space is None
    assert np.abs(source_rgb - output_rgb).max() <= 2.0
