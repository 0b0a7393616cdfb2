"""Cancel, retry and delete tasks, and remove the files that belong to them.

Used by the task views, the admin actions and the maintenance commands. Every state change is a conditional
UPDATE or runs on a row locked with SELECT ... FOR UPDATE (SQLite has no row locks, but its immediate-mode
transactions serialise writers), so it cannot interleave with the worker's claim or its final status write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ACTIVE_STATUSES, PARAM_FIELDS, Status, Task

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)


class OperationRejected(Exception):
    """An operation that does not apply to the task in its current state; `message` is shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class FilesRemoved:
    """How many files an operation removed (or would remove, in a dry run) and their total size in bytes."""

    files: int = 0
    bytes: int = 0

    def add(self, other: FilesRemoved) -> None:
        self.files += other.files
        self.bytes += other.bytes


# --- Cancel -------------------------------------------------------------------------------------------------


def cancel_task(task: Task) -> str:
    """Cancel a queued task at once, or ask the worker to stop a running one; returns the resulting status.

    A queued task becomes `cancelled` immediately and the worker's claim skips it. A running task keeps
    `running` with `cancel_requested` set until the worker's cancel check reads the flag, stops the pipeline
    and stores `cancelled`. Raises OperationRejected for a finished task.
    """
    now = timezone.now()
    queued = Task.objects.filter(pk=task.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, cancel_requested=True, finished_at=now, eta_seconds=None
    )
    if queued:
        logger.info("Task %s cancelled while queued", task.pk)
        return Status.CANCELLED

    running = Task.objects.filter(pk=task.pk, status=Status.RUNNING).update(cancel_requested=True)
    if running:
        logger.info("Cancel requested for running task %s on worker %s", task.pk, task.worker_id or "?")
        return Status.RUNNING

    current = _current_status(task)
    raise OperationRejected(
        _("This task is already %(status)s, so there is nothing to cancel.")
        % {"status": current.label.lower()}
    )


# --- Retry --------------------------------------------------------------------------------------------------


def retry_task(task: Task) -> Task:
    """Create and enqueue a new task with the same input file and parameters (attempt + 1, retry_of set).

    Only failed, cancelled and interrupted tasks can be retried, each by one active retry at a time. The input
    file is shared with the original task; deleting either keeps it while the other still refers to it.
    """
    from .services import enqueue_upscale

    with transaction.atomic():
        source = Task.objects.select_for_update().filter(pk=task.pk).first()
        if source is None:
            raise OperationRejected(_("This task no longer exists, so it cannot be retried."))
        _check_retryable(source)
        retry = Task.objects.create(**_retry_fields(source))
        transaction.on_commit(lambda: enqueue_upscale(retry))
    logger.info("Task %s created as attempt %d of task %s", retry.pk, retry.attempt, source.pk)
    return retry


def _check_retryable(source: Task) -> None:
    if source.status not in RETRYABLE_STATUSES:
        raise OperationRejected(
            _("Only failed, cancelled or interrupted tasks can be retried; this one is %(status)s.")
            % {"status": Status(source.status).label.lower()}
        )
    if source.retries.filter(status__in=ACTIVE_STATUSES).exists():
        raise OperationRejected(_("A retry of this task is already queued or running."))
    if not source.input_file or not media_path(source.input_file.name).is_file():
        raise OperationRejected(
            _(
                "The uploaded video of this task is no longer on the server, so it cannot be retried. "
                "Upload it again."
            )
        )


def _retry_fields(source: Task) -> dict:
    fields = {name: getattr(source, name) for name in PARAM_FIELDS}
    fields.update(
        owner=source.owner,
        original_filename=source.original_filename,
        input_file=source.input_file.name,
        input_size=source.input_size,
        input_sha256=source.input_sha256,
        source_metadata=source.source_metadata,
        total_frames=(source.source_metadata or {}).get("frame_count") or 0,
        attempt=source.attempt + 1,
        retry_of=source,
    )
    return fields


# --- Delete -------------------------------------------------------------------------------------------------


def delete_task(task: Task) -> FilesRemoved:
    """Delete a task row with its result, preview and partial files, and its input when no other task uses it.

    A running task is rejected, because its worker is still writing files: cancel it first. A queued task is
    deleted at once, and the worker's claim then finds no row and skips it.
    """
    with transaction.atomic():
        row = Task.objects.select_for_update().filter(pk=task.pk).first()
        if row is None:
            return FilesRemoved()
        if row.status == Status.RUNNING:
            raise OperationRejected(
                _("This task is running. Cancel it and wait until it has stopped, then delete it.")
            )
        input_name = row.input_file.name
        row.delete()
        input_still_used = bool(input_name) and Task.objects.filter(input_file=input_name).exists()

    removed = remove_output_files(task)
    if input_name and not input_still_used:
        removed.add(remove_media_files([input_name]))
    logger.info("Task %s deleted: %d files, %d bytes removed", task.pk, removed.files, removed.bytes)
    return removed


# --- Files --------------------------------------------------------------------------------------------------


def media_path(name: str) -> Path:
    return Path(settings.MEDIA_ROOT) / name


def output_file_names(task: Task) -> list[str]:
    """Names, relative to MEDIA_ROOT, of every existing result, preview and partial file of the task.

    Besides the names stored on the row this includes anything named after the task id under results/ and
    previews/, such as `results/<id>.mp4.partial` left by a worker that died.
    """
    names = {name for name in (task.result_file.name, task.preview_file.name) if name}
    for folder in ("results", "previews"):
        directory = media_path(folder)
        if directory.is_dir():
            names.update(f"{folder}/{path.name}" for path in directory.glob(f"{task.pk}.*"))
    return sorted(name for name in names if media_path(name).is_file())


def remove_output_files(task: Task) -> FilesRemoved:
    return remove_media_files(output_file_names(task))


def remove_media_files(names, *, dry_run: bool = False) -> FilesRemoved:
    """Remove the named files under MEDIA_ROOT, or only measure them when `dry_run`; skip missing ones."""
    removed = FilesRemoved()
    for name in names:
        path = media_path(name)
        try:
            size = path.stat().st_size
            if not dry_run:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            logger.warning("Removing %s failed: %s", path, error)
            continue
        removed.files += 1
        removed.bytes += size
    return removed


def _current_status(task: Task) -> Status:
    value = Task.objects.filter(pk=task.pk).values_list("status", flat=True).first()
    if value is None:
        raise OperationRejected(_("This task no longer exists."))
    return Status(value)
