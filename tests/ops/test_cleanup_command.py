"""`manage.py cleanup_tasks`: expired finished tasks go with their files; active tasks are never touched."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tasks_app.models import Status, Task

from .conftest import add_outputs, media_files, write_media_file

pytestmark = pytest.mark.django_db


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def run_cleanup(*args: str) -> str:
    out = StringIO()
    call_command("cleanup_tasks", *args, stdout=out)
    return out.getvalue()


def test_old_finished_tasks_are_deleted_with_files(clip_task, media_root, settings):
    settings.TASK_RETENTION_DAYS = 30
    old = clip_task(status=Status.SUCCEEDED, finished_at=days_ago(31))
    add_outputs(old, media_root)
    input_size = (media_root / old.input_file.name).stat().st_size
    recent = clip_task(status=Status.SUCCEEDED, finished_at=days_ago(29))

    output = run_cleanup()

    assert list(Task.objects.values_list("pk", flat=True)) == [recent.pk]
    assert media_files(media_root) == [recent.input_file.name]
    assert output.strip() == f"Deleted 1 tasks and 3 files, freeing {input_size + 350} bytes."


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED, Status.INTERRUPTED])
def test_every_finished_status_expires(clip_task, status):
    clip_task(status=status, finished_at=days_ago(40))

    run_cleanup()

    assert Task.objects.count() == 0


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_queued_and_running_tasks_and_their_files_stay(clip_task, media_root, status):
    task = clip_task(status=status, finished_at=days_ago(400))
    Task.objects.filter(pk=task.pk).update(created_at=days_ago(400))
    write_media_file(media_root, f"results/{task.pk}.mp4.video.partial")
    before = media_files(media_root)

    output = run_cleanup("--older-than", "0")

    assert Task.objects.filter(pk=task.pk, status=status).exists()
    assert media_files(media_root) == before
    assert output.startswith("Deleted 0 tasks and 0 files")


def test_input_shared_with_an_active_retry_is_kept(clip_task, media_root):
    old = clip_task(status=Status.FAILED, finished_at=days_ago(60))
    retry = Task.objects.create(
        owner=old.owner,
        original_filename="source.mp4",
        input_file=old.input_file.name,
        retry_of=old,
        attempt=2,
    )

    dry_output = run_cleanup("--dry-run")
    run_cleanup()

    assert list(Task.objects.values_list("pk", flat=True)) == [retry.pk]
    assert media_files(media_root) == [old.input_file.name]
    assert dry_output.startswith("Would delete 1 tasks and 0 files")


def test_task_without_finish_time_expires_by_creation(clip_task):
    task = clip_task(status=Status.FAILED)
    Task.objects.filter(pk=task.pk).update(created_at=days_ago(90), finished_at=None)

    run_cleanup("--older-than", "30")

    assert Task.objects.count() == 0


def test_dry_run_reports_without_deleting(clip_task, media_root):
    old = clip_task(status=Status.SUCCEEDED, finished_at=days_ago(31))
    add_outputs(old, media_root)
    input_size = (media_root / old.input_file.name).stat().st_size
    before = media_files(media_root)

    output = run_cleanup("--dry-run")

    assert output.strip() == f"Would delete 1 tasks and 3 files, freeing {input_size + 350} bytes."
    assert Task.objects.count() == 1
    assert media_files(media_root) == before


def test_negative_age_is_rejected():
    with pytest.raises(CommandError, match="--older-than must be 0 or more days"):
        run_cleanup("--older-than", "-1")
