import signal
import threading
from pathlib import Path

import av
import pytest
from django.db import connection
from django_q.exceptions import TimeoutException

from flashvsr_site.shutdown import WorkerShutdown
from gpu.params import OutputError, Progress
from gpu.video.probe import probe
from tasks_app import jobs
from tasks_app.models import Status, Task, WorkerHeartbeat
from tasks_app.operations import retry_task
from tests.video.clips import make_clip


@pytest.fixture
def clip_task(make_task, tmp_path):
    clip = make_clip(tmp_path / "source.mp4", frames=6, fps=10)
    return make_task(
        input_bytes=clip.read_bytes(),
        original_filename="source.mp4",
        variant="lanczos",
        scale=2,
        source_metadata=probe(clip).to_dict(),
    )


def results_dir(media_root: Path) -> list[str]:
    folder = media_root / "results"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.django_db
def test_run_upscale_lanczos_end_to_end(clip_task, media_root):
    outcome = jobs.run_upscale(str(clip_task.pk))

    task = Task.objects.get(pk=clip_task.pk)
    assert outcome == Status.SUCCEEDED
    assert task.status == Status.SUCCEEDED
    assert task.result_file.name == f"results/{task.pk}.mp4"
    assert task.result_size == Path(task.result_file.path).stat().st_size
    assert task.progress == 1.0
    assert task.processed_frames == 6
    assert task.started_at <= task.finished_at
    assert task.worker_id
    with av.open(task.result_file.path) as result:
        stream = result.streams.video[0]
        frames = list(result.decode(stream))
    assert len(frames) == 6
    assert (frames[0].width, frames[0].height) == (128, 96)
    assert results_dir(media_root) == [f"{task.pk}.mp4"]
    beat = WorkerHeartbeat.objects.get(worker_id=task.worker_id)
    assert beat.current_task is None


@pytest.mark.django_db
def test_second_delivery_does_nothing(clip_task):
    assert jobs.run_upscale(str(clip_task.pk)) == Status.SUCCEEDED
    first = Task.objects.get(pk=clip_task.pk)
    mtime = Path(first.result_file.path).stat().st_mtime_ns

    assert jobs.run_upscale(str(clip_task.pk)) == "skipped"

    second = Task.objects.get(pk=clip_task.pk)
    assert second.status == Status.SUCCEEDED
    assert second.finished_at == first.finished_at
    assert Path(second.result_file.path).stat().st_mtime_ns == mtime


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_only_one_wins(make_task):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs concurrent connections to PostgreSQL")
    task = make_task()
    barrier = threading.Barrier(4)
    results = []

    def claim(worker: str) -> None:
        try:
            barrier.wait()
            results.append(jobs.claim_task(str(task.pk), worker))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"host:{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, False, False, True]
    task.refresh_from_db()
    assert task.status == Status.RUNNING


@pytest.mark.django_db
def test_progress_saves_throttled_to_interval(make_task):
    task = make_task(status=Status.RUNNING, total_frames=0)
    clock = FakeClock()
    recorder = jobs.ProgressRecorder(task.pk, interval_s=1.0, clock=clock)

    for processed in range(1, 11):
        recorder(Progress(processed, 100, 12.5, 8.0))
        clock.now += 0.05
    assert recorder.saves == 1
    task.refresh_from_db()
    assert task.processed_frames == 1

    clock.now += 1.0
    recorder(Progress(40, 100, 20.0, 3.0))
    task.refresh_from_db()
    assert recorder.saves == 2
    assert task.processed_frames == 40
    assert task.total_frames == 100
    assert task.progress == pytest.approx(0.4)
    assert task.frames_per_second == 20.0
    assert task.eta_seconds == 3.0
    assert task.heartbeat_at is not None

    recorder(Progress(100, 100, 21.0, 0.0))
    task.refresh_from_db()
    assert recorder.saves == 3
    assert task.progress == 1.0


@pytest.mark.django_db
def test_cancel_check_reads_database_at_interval(make_task):
    task = make_task(status=Status.RUNNING)
    clock = FakeClock()
    check = jobs.CancelCheck(task.pk, interval_s=1.0, clock=clock)
    assert check() is False

    Task.objects.filter(pk=task.pk).update(cancel_requested=True)
    clock.now += 0.5
    assert check() is False
    clock.now += 0.6
    assert check() is True


@pytest.mark.django_db
def test_cancel_while_running_ends_cancelled(clip_task, media_root, monkeypatch):
    import gpu.api

    real_upscale = gpu.api.upscale_video

    def cancel_then_upscale(*args, **kwargs):
        Task.objects.filter(pk=clip_task.pk).update(cancel_requested=True)
        return real_upscale(*args, **kwargs)

    monkeypatch.setattr("gpu.api.upscale_video", cancel_then_upscale)
    assert jobs.run_upscale(str(clip_task.pk)) == Status.CANCELLED

    task = Task.objects.get(pk=clip_task.pk)
    assert task.status == Status.CANCELLED
    assert not task.result_file
    assert results_dir(media_root) == []


@pytest.mark.django_db
def test_upscale_error_stores_user_message(clip_task, media_root, monkeypatch):
    def fail(*args, **kwargs):
        raise OutputError("The disk holding the results is full.", detail="ENOSPC while writing")

    monkeypatch.setattr("gpu.api.upscale_video", fail)
    Task.objects.filter(pk=clip_task.pk).update(preview_file=f"previews/{clip_task.pk}.jpg")
    assert jobs.run_upscale(str(clip_task.pk)) == Status.FAILED

    task = Task.objects.get(pk=clip_task.pk)
    assert not task.preview_file
    assert task.status == Status.FAILED
    assert task.error_message == "The disk holding the results is full."
    assert "ENOSPC while writing" in task.error_detail
    assert results_dir(media_root) == []


@pytest.mark.django_db
def test_unexpected_error_fails_with_generic_message(clip_task, monkeypatch):
    def crash(*args, **kwargs):
        raise ZeroDivisionError("bug in the pipeline")

    monkeypatch.setattr("gpu.api.upscale_video", crash)
    assert jobs.run_upscale(str(clip_task.pk)) == Status.FAILED

    task = Task.objects.get(pk=clip_task.pk)
    assert "internal error" in task.error_message
    assert "ZeroDivisionError: bug in the pipeline" in task.error_detail


@pytest.mark.django_db
def test_timeout_marks_failed_and_removes_partial_result(clip_task, media_root, monkeypatch, settings):
    settings.FLASHVSR_TASK_TIMEOUT_SECONDS = 120

    def run_past_timeout(input_path, output_path, *args, **kwargs):
        Path(output_path).write_bytes(b"partial")
        raise TimeoutException("Task exceeded maximum timeout value (120 seconds)")

    monkeypatch.setattr("gpu.api.upscale_video", run_past_timeout)
    with pytest.raises(TimeoutException):
        jobs.run_upscale(str(clip_task.pk))

    task = Task.objects.get(pk=clip_task.pk)
    assert task.status == Status.FAILED
    assert "time limit of 120 seconds" in task.error_message
    assert "shorter clip" in task.error_message
    assert "TimeoutException" in task.error_detail
    assert task.finished_at is not None
    assert results_dir(media_root) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stop",
    [WorkerShutdown(128 + signal.SIGTERM), KeyboardInterrupt(), SystemExit(1)],
    ids=["worker-shutdown", "keyboard-interrupt", "system-exit"],
)
def test_worker_stop_marks_interrupted(clip_task, media_root, monkeypatch, stop):
    def run_until_stopped(input_path, output_path, *args, **kwargs):
        Path(output_path).write_bytes(b"partial")
        raise stop

    monkeypatch.setattr("gpu.api.upscale_video", run_until_stopped)
    with pytest.raises(type(stop)):
        jobs.run_upscale(str(clip_task.pk))

    task = Task.objects.get(pk=clip_task.pk)
    assert task.status == Status.INTERRUPTED
    assert task.error_message == "The worker stopped while processing this video. Retry it."
    assert type(stop).__name__ in task.error_detail
    assert task.finished_at is not None
    assert results_dir(media_root) == []


@pytest.mark.django_db
def test_interrupted_task_can_be_retried(clip_task, monkeypatch):
    def run_until_stopped(*args, **kwargs):
        raise WorkerShutdown(128 + signal.SIGINT)

    monkeypatch.setattr("gpu.api.upscale_video", run_until_stopped)
    with pytest.raises(WorkerShutdown):
        jobs.run_upscale(str(clip_task.pk))

    retry = retry_task(Task.objects.get(pk=clip_task.pk))
    assert retry.status == Status.QUEUED
    assert retry.retry_of_id == clip_task.pk


@pytest.mark.django_db
def test_finished_task_is_not_claimed(make_task):
    task = make_task(status=Status.SUCCEEDED)
    assert jobs.run_upscale(str(task.pk)) == "skipped"
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED


@pytest.mark.django_db
def test_progress_records_preview_once_written(make_task, media_root):
    task = make_task(status=Status.RUNNING)
    preview = media_root / "previews" / f"{task.pk}.jpg"
    preview.parent.mkdir(parents=True)
    clock = FakeClock()
    recorder = jobs.ProgressRecorder(task.pk, preview_path=preview, interval_s=1.0, clock=clock)

    recorder(Progress(1, 10, 5.0, 2.0))
    task.refresh_from_db()
    assert not task.preview_file

    preview.write_bytes(b"\xff\xd8 jpeg")
    clock.now += 1.5
    recorder(Progress(5, 10, 5.0, 1.0))
    task.refresh_from_db()
    assert task.preview_file.name == f"previews/{task.pk}.jpg"
