"""`manage.py prune_media`: unreferenced and stale temporary files go; files of active tasks stay."""

from __future__ import annotations

import os
import time
from io import StringIO

import pytest
from django.core.management import call_command

from tasks_app.models import Status

from .conftest import add_outputs, media_files, write_media_file

pytestmark = pytest.mark.django_db

HOUR = 3600


def age(path, seconds: float) -> None:
    """Set the file's modification time `seconds` into the past."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def run_prune(*args: str) -> str:
    out = StringIO()
    call_command("prune_media", *args, stdout=out)
    return out.getvalue()


def test_old_unreferenced_files_are_removed(clip_task, media_root):
    task = clip_task(status=Status.SUCCEEDED)
    add_outputs(task, media_root)
    for name in ("uploads/orphan", "results/orphan.mp4", "previews/orphan.jpg"):
        age(write_media_file(media_root, name, b"o" * 10), 2 * HOUR)

    output = run_prune()

    assert media_files(media_root) == sorted(
        [task.input_file.name, task.result_file.name, task.preview_file.name]
    )
    assert output.startswith("Removed 3 files")
    assert "freeing 30 bytes" in output


def test_fresh_unreferenced_upload_is_kept(media_root):
    write_media_file(media_root, "uploads/being-saved")

    run_prune()

    assert media_files(media_root) == ["uploads/being-saved"]


def test_stale_temporary_files_are_removed(clip_task, media_root):
    finished = clip_task(status=Status.FAILED)
    age(write_media_file(media_root, "tmp/upload-spool.upload"), 7 * HOUR)
    age(write_media_file(media_root, f"results/{finished.pk}.mp4.partial"), 7 * HOUR)
    age(write_media_file(media_root, "previews/.preview-abc.jpg"), 7 * HOUR)
    age(write_media_file(media_root, "tmp/recent.upload"), 5 * HOUR)

    run_prune()

    assert media_files(media_root) == sorted([finished.input_file.name, "tmp/recent.upload"])


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_files_of_active_tasks_are_never_removed(clip_task, media_root, status):
    task = clip_task(status=status)
    names = [
        f"results/{task.pk}.mp4.video.partial",
        f"results/{task.pk}.mp4.partial",
        f"previews/{task.pk}.jpg",
    ]
    for name in names:
        age(write_media_file(media_root, name), 48 * HOUR)
    age(media_root / task.input_file.name, 48 * HOUR)

    run_prune()

    assert media_files(media_root) == sorted([task.input_file.name, *names])


def test_files_named_after_a_finished_task_stay(clip_task, media_root):
    task = clip_task(status=Status.SUCCEEDED)
    stills = [f"previews/{task.pk}.before.jpg", f"previews/{task.pk}.after.jpg"]
    for name in stills:
        age(write_media_file(media_root, name), 48 * HOUR)

    run_prune()

    assert media_files(media_root) == sorted([task.input_file.name, *stills])


def test_dry_run_removes_nothing(media_root):
    age(write_media_file(media_root, "uploads/orphan", b"o" * 10), 2 * HOUR)

    output = run_prune("--dry-run")

    assert output.startswith("Would remove 1 files")
    assert media_files(media_root) == ["uploads/orphan"]


def test_files_outside_media_folders_are_ignored(media_root):
    age(write_media_file(media_root, "README.txt"), 48 * HOUR)

    run_prune()

    assert media_files(media_root) == ["README.txt"]
