"""Housekeeping: reconcile tasks whose worker died, delete expired tasks, prune files no row refers to.

The management commands reconcile_tasks, cleanup_tasks and prune_media call these functions, and so do the
django-q2 schedules of the maintenance cluster (the `scheduled_*` functions). None of them ever changes a
queued task or removes a file of a queued or running task, except that reconcile removes the partial files of
the tasks it marks interrupted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ACTIVE_STATUSES, FINISHED_STATUSES, Status, Task, WorkerHeartbeat
from .operations import FilesRemoved, delete_task, media_path, output_file_names, remove_media_files

logger = logging.getLogger(__name__)

MEDIA_FOLDERS = ("uploads", "results", "previews", "tmp")
# Temporary files (upload spools, `.partial` encoder outputs, preview temp files) this old are abandoned.
STALE_TEMP_FILE_SECONDS = 6 * 3600
# A file no row refers to is kept this long, because an upload is stored a moment before its row is saved.
ORPHAN_GRACE_SECONDS = 3600
# Heartbeat rows of workers not seen for this long are deleted, so the status panel drops dead workers.
HEARTBEAT_ROW_MAX_AGE = timedelta(days=1)


# --- Reconcile ----------------------------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    interrupted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    removed: FilesRemoved = field(default_factory=FilesRemoved)
    heartbeats_deleted: int = 0


def reconcile_tasks(*, stale_seconds: float | None = None, now: datetime | None = None) -> ReconcileReport:
    """Mark running tasks of dead workers as interrupted (or cancelled, if a cancel was requested).

    A running task counts as abandoned when its own `heartbeat_at` (written with each progress report) and the
    heartbeat row of the worker named in `worker_id` are both older than `stale_seconds`, or missing. Its
    partial result and preview files are removed.
    """
    now = now or timezone.now()
    stale = stale_seconds if stale_seconds is not None else settings.FLASHVSR_HEARTBEAT_STALE_SECONDS
    cutoff = now - timedelta(seconds=stale)
    report = ReconcileReport()
    for task in _abandoned_tasks(cutoff):
        status = _mark_abandoned(task, cutoff, now)
        if status is None:
            continue
        report.removed.add(_remove_partial_files(task))
        (report.cancelled if status == Status.CANCELLED else report.interrupted).append(str(task.pk))
    report.heartbeats_deleted, _ = WorkerHeartbeat.objects.filter(
        seen_at__lt=now - HEARTBEAT_ROW_MAX_AGE
    ).delete()
    return report


def _abandoned_tasks(cutoff: datetime) -> list[Task]:
    live_workers = WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).values_list("worker_id", flat=True)
    return list(
        Task.objects.filter(status=Status.RUNNING)
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
        .exclude(worker_id__in=list(live_workers))
    )


def _mark_abandoned(task: Task, cutoff: datetime, now: datetime) -> str | None:
    """Store the new status unless the task made progress or finished meanwhile; returns it, or None."""
    if task.cancel_requested:
        status, message = Status.CANCELLED, ""
    else:
        status, message = Status.INTERRUPTED, _("The worker stopped while processing this video. Retry it.")
    changed = (
        Task.objects.filter(pk=task.pk, status=Status.RUNNING)
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
        .update(
            status=status,
            finished_at=now,
            error_message=message,
            error_detail=(
                f"reconcile_tasks: no heartbeat from worker {task.worker_id or '(none)'} "
                f"since {cutoff:%Y-%m-%d %H:%M:%S %Z}"
            ),
            eta_seconds=None,
            result_file="",
            preview_file="",
        )
    )
    if not changed:
        return None
    logger.warning(
        "Task %s marked %s: its worker %s stopped sending heartbeats", task.pk, status, task.worker_id or "?"
    )
    return status


def _remove_partial_files(task: Task) -> FilesRemoved:
    return remove_media_files(output_file_names(task))


# --- Cleanup of expired tasks -------------------------------------------------------------------------------


@dataclass
class CleanupReport:
    tasks: int = 0
    removed: FilesRemoved = field(default_factory=FilesRemoved)
    skipped: list[str] = field(default_factory=list)


def expired_tasks(older_than_days: int, *, now: datetime | None = None):
    """Finished tasks that ended (or, lacking an end time, were created) more than `older_than_days` ago."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    return Task.objects.filter(status__in=FINISHED_STATUSES).filter(
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)
    )


def cleanup_tasks(
    *, older_than_days: int | None = None, dry_run: bool = False, now: datetime | None = None
) -> CleanupReport:
    """Delete expired finished tasks with their files; a dry run only counts what would go."""
    days = older_than_days if older_than_days is not None else settings.TASK_RETENTION_DAYS
    candidates = list(expired_tasks(days, now=now))
    if dry_run:
        return _plan_cleanup(candidates)
    report = CleanupReport()
    for task in candidates:
        try:
            report.removed.add(delete_task(task))
            report.tasks += 1
        except Exception as error:
            # One broken row must not stop the rest of the cleanup; the next run tries it again.
            logger.exception("Cleaning up task %s failed", task.pk)
            report.skipped.append(f"{task.pk}: {error}")
    return report


def _plan_cleanup(candidates: list[Task]) -> CleanupReport:
    candidate_ids = {task.pk for task in candidates}
    names: set[str] = set()
    for task in candidates:
        names.update(output_file_names(task))
        input_name = task.input_file.name
        if (
            input_name
            and not Task.objects.filter(input_file=input_name).exclude(pk__in=candidate_ids).exists()
        ):
            names.add(input_name)
    return CleanupReport(tasks=len(candidates), removed=remove_media_files(sorted(names), dry_run=True))


# --- Pruning of orphan and stale temporary files ---------------------------------------------------


def prune_media(*, dry_run: bool = False, now: float | None = None) -> FilesRemoved:
    """Remove files under MEDIA_ROOT that no task refers to, and temporary files left behind.

    Files of queued and running tasks are never touched. Files named after an existing task, such as the
    comparison stills `previews/<id>.before.jpg`, stay until the task is deleted, unless they are temporary.
    Unreferenced files younger than an hour and temporary files younger than six hours are kept, because an
    upload or a run may still be writing them.
    """
    now = now if now is not None else time.time()
    referenced = _referenced_names()
    active_prefixes = _task_prefixes(Task.objects.filter(status__in=ACTIVE_STATUSES))
    owned_prefixes = _task_prefixes(Task.objects.all())
    doomed = []
    for name, path in _media_files():
        if name in referenced or name.startswith(active_prefixes):
            continue
        if name.startswith(owned_prefixes) and not _is_temporary(name):
            continue
        age = now - path.stat().st_mtime
        limit = STALE_TEMP_FILE_SECONDS if _is_temporary(name) else ORPHAN_GRACE_SECONDS
        if age > limit:
            doomed.append(name)
    removed = remove_media_files(doomed, dry_run=dry_run)
    if doomed and not dry_run:
        logger.info(
            "Pruned %d unreferenced or stale files under %s, %d bytes",
            removed.files,
            settings.MEDIA_ROOT,
            removed.bytes,
        )
    return removed


def _referenced_names() -> set[str]:
    names = set()
    for row in Task.objects.values_list("input_file", "result_file", "preview_file"):
        names.update(name for name in row if name)
    return names


def _task_prefixes(tasks) -> tuple[str, ...]:
    """Name prefixes of the files the workers and views write for these tasks, e.g. `results/<id>.`."""
    task_ids = tasks.values_list("pk", flat=True)
    return tuple(f"{folder}/{task_id}." for task_id in task_ids for folder in ("results", "previews"))


def _media_files():
    for folder in MEDIA_FOLDERS:
        directory = media_path(folder)
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(settings.MEDIA_ROOT).as_posix(), path


def _is_temporary(name: str) -> bool:
    base = Path(name).name
    return name.startswith("tmp/") or base.endswith(".partial") or base.startswith(".preview-")


# --- django-q2 schedule entry points ---------------------------------------------------------------


def scheduled_reconcile() -> str:
    report = reconcile_tasks()
    return (
        f"interrupted {len(report.interrupted)}, cancelled {len(report.cancelled)}, "
        f"removed {report.removed.files} files"
    )


def scheduled_cleanup() -> str:
    report = cleanup_tasks()
    return f"deleted {report.tasks} tasks, {report.removed.files} files, {report.removed.bytes} bytes"


def scheduled_prune() -> str:
    removed = prune_media()
    return f"removed {removed.files} files, {removed.bytes} bytes"
