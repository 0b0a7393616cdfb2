"""`manage.py reconcile_tasks`: running tasks of dead workers become interrupted, live ones are left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tasks_app.models import Status, Task, WorkerHeartbeat

from .conftest import media_files, write_media_file

pytestmark = pytest.mark.django_db


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def heartbeat(worker_id: str, seen_seconds_ago: float) -> WorkerHeartbeat:
    host, pid = worker_id.split(":")
    return WorkerHeartbeat.objects.create(
        worker_id=worker_id, host=host, pid=int(pid), cluster="gpu", seen_at=ago(seen_seconds_ago)
    )


def run_reconcile(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("reconcile_tasks", *args, stdout=out)
    return out.getvalue()


def test_task_of_dead_worker_becomes_interrupted(clip_task, media_root):
    heartbeat("gpu-a:100", seen_seconds_ago=300)
    task = clip_task(status=Status.RUNNING, worker_id="gpu-a:100", heartbeat_at=ago(300), started_at=ago(400))
    write_media_file(media_root, f"results/{task.pk}.mp4.video.partial", b"v" * 1000)
    write_media_file(media_root, f"results/{task.pk}.mp4.partial", b"m" * 10)
    write_media_file(media_root, f"previews/{task.pk}.jpg", b"j" * 5)

    output = run_reconcile()

    task.refresh_from_db()
    assert task.status == Status.INTERRUPTED
    assert task.error_message == "The worker stopped while processing this video. Retry it."
    assert "gpu-a:100" in task.error_detail
    assert task.finished_at is not None
    assert media_files(media_root) == [task.input_file.name]
    assert f"interrupted {task.pk}" in output
    assert "1 interrupted, 0 cancelled, 3 partial files removed (1015 bytes)" in output


def test_task_without_any_worker_heartbeat_becomes_interrupted(clip_task):
    task = clip_task(status=Status.RUNNING, worker_id="gone:1", heartbeat_at=ago(120))

    run_reconcile()

    task.refresh_from_db()
    assert task.status == Status.INTERRUPTED


def test_task_of_live_worker_is_left_running(clip_task, media_root):
    heartbeat("gpu-a:100", seen_seconds_ago=2)
    task = clip_task(status=Status.RUNNING, worker_id="gpu-a:100", heartbeat_at=ago(300))
    write_media_file(media_root, f"results/{task.pk}.mp4.video.partial")

    run_reconcile()

    task.refresh_from_db()
    assert task.status == Status.RUNNING
    assert f"results/{task.pk}.mp4.video.partial" in media_files(media_root)


def test_task_with_recent_progress_is_left_running(clip_task):
    task = clip_task(status=Status.RUNNING, worker_id="gone:1", heartbeat_at=ago(5))

    run_reconcile()

    task.refresh_from_db()
    assert task.status == Status.RUNNING


def test_small_stale_threshold_from_the_command_line(clip_task):
    heartbeat("gpu-a:100", seen_seconds_ago=5)
    task = clip_task(status=Status.RUNNING, worker_id="gpu-a:100", heartbeat_at=ago(5))

    run_reconcile("--stale-seconds", "60")
    task.refresh_from_db()
    assert task.status == Status.RUNNING

    run_reconcile("--stale-seconds", "2")
    task.refresh_from_db()
    assert task.status == Status.INTERRUPTED


def test_requested_cancel_of_dead_worker_becomes_cancelled(clip_task):
    task = clip_task(status=Status.RUNNING, worker_id="gone:1", heartbeat_at=ago(300), cancel_requested=True)

    output = run_reconcile()

    task.refresh_from_db()
    assert task.status == Status.CANCELLED
    assert task.error_message == ""
    assert f"cancelled {task.pk}" in output


@pytest.mark.parametrize("status", [Status.QUEUED, Status.SUCCEEDED, Status.FAILED])
def test_tasks_not_running_are_untouched(clip_task, media_root, status):
    task = clip_task(status=status, heartbeat_at=ago(3600), created_at=ago(3600))
    write_media_file(media_root, f"results/{task.pk}.mp4")

    run_reconcile()

    task.refresh_from_db()
    assert task.status == status
    assert f"results/{task.pk}.mp4" in media_files(media_root)


def test_old_heartbeat_rows_are_deleted(clip_task):
    heartbeat("old:1", seen_seconds_ago=2 * 86400)
    heartbeat("recent:2", seen_seconds_ago=600)

    output = run_reconcile()

    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["recent:2"]
    assert "1 old worker heartbeats deleted" in output


def test_invalid_stale_seconds_is_rejected():
    with pytest.raises(CommandError, match="--stale-seconds must be greater than 0"):
        run_reconcile("--stale-seconds", "0")


def test_maintenance_schedules_exist_for_the_maintenance_cluster():
    from django_q.models import Schedule

    schedules = {s.func: s for s in Schedule.objects.filter(name__startswith="flashvsr-")}

    assert set(schedules) == {
        "tasks_app.maintenance.scheduled_reconcile",
        "tasks_app.maintenance.scheduled_cleanup",
        "tasks_app.maintenance.scheduled_prune",
    }
    assert {s.cluster for s in schedules.values()} == {"maintenance"}
    assert schedules["tasks_app.maintenance.scheduled_reconcile"].minutes == 1
    assert Task.objects.count() == 0
