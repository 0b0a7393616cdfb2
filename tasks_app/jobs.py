"""django-q2 task functions run by the GPU cluster.

`run_upscale` is enqueued with `cluster="gpu"` and runs in a forked worker process. torch (through gpu.api
and the model code) is imported only inside the job, never at module import, so the fork happens before any
CUDA initialisation.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.exceptions import TimeoutException

from gpu.params import Cancelled, Progress, RuntimeOptions, UpscaleError, UpscaleResult

from . import heartbeat
from .models import Status, Task

logger = logging.getLogger(__name__)

PROGRESS_SAVE_INTERVAL_S = 1.0
CANCEL_CHECK_INTERVAL_S = 1.0


def run_upscale(task_id: str) -> str:
    """Claim the task, upscale its input into results/, and record the outcome on the row.

    Steps:
    1. Claim with a conditional UPDATE queued -> running that must change exactly one row, so a duplicate
       delivery or a second cluster returns without doing anything.
    2. Run gpu.api.upscale_video with a throttled progress recorder and cancel check.
    3. Store succeeded, failed, cancelled or interrupted with a conditional UPDATE on status running, so a
       change made meanwhile by an operator or by reconcile is not overwritten.
    django-q2's timeout and a worker shutdown raise SystemExit subclasses, which `except Exception` does not
    catch. A timeout is stored as failed, because a retry would run into the same limit. A shutdown is stored
    as interrupted, which the user can retry. Both are re-raised, and any partial result is removed.
    """
    worker_id = heartbeat.current_worker_id()
    if not claim_task(task_id, worker_id):
        logger.warning(
            "Task %s was not claimed by %s: it is not queued any more (duplicate delivery?)",
            task_id,
            worker_id,
        )
        return "skipped"

    task = Task.objects.get(pk=task_id)
    output_path = _result_path(task)
    logger.info("Task %s started on %s: variant %s, scale %d", task.pk, worker_id, task.variant, task.scale)
    heartbeat.beat(current_task_id=task.pk)
    outcome = Status.RUNNING
    try:
        result = _upscale(task, output_path)
        outcome = _finish(task, Status.SUCCEEDED, **_success_fields(task, output_path, result))
    except Cancelled:
        outcome = _finish(task, Status.CANCELLED)
        logger.info("Task %s cancelled", task.pk)
    except TimeoutException as error:
        outcome = _finish_timed_out(task, error)
        raise
    except UpscaleError as error:
        outcome = _finish(
            task, Status.FAILED, error_message=error.user_message, error_detail=_technical(error)
        )
        logger.warning("Task %s failed: %s", task.pk, error)
    except Exception as error:
        outcome = _finish(
            task,
            Status.FAILED,
            error_message=_(
                "The upscale failed because of an internal error. Retry the task; if it fails again, "
                "ask the operator to read the worker log."
            ),
            error_detail=_technical(error),
        )
        logger.exception("Task %s failed with an unexpected error", task.pk)
    except BaseException as error:
        outcome = _finish_stopped(task, error)
        raise
    finally:
        if outcome != Status.SUCCEEDED:
            output_path.unlink(missing_ok=True)
            # A task without a result keeps no preview: the row's link (set while running) goes with the file.
            _preview_path(task).unlink(missing_ok=True)
            Task.objects.filter(pk=task.pk).exclude(preview_file="").update(preview_file="")
        heartbeat.beat(current_task_id=None)
    return outcome


def claim_task(task_id: str, worker_id: str) -> bool:
    """Move the task from queued to running for this worker; True only if this call changed the row."""
    now = timezone.now()
    claimed = Task.objects.filter(pk=task_id, status=Status.QUEUED, cancel_requested=False).update(
        status=Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker_id=worker_id,
        progress=0.0,
        processed_frames=0,
        frames_per_second=None,
        eta_seconds=None,
    )
    return claimed == 1


def _upscale(task: Task, output_path: Path) -> UpscaleResult:
    from gpu.api import upscale_video
    from gpu.video.probe import SourceInfo

    output_path.parent.mkdir(parents=True, exist_ok=True)
    source_info = None
    if task.source_metadata:
        # The stored path may be stale (a moved MEDIA_ROOT); the writer copies audio from info.path.
        source_info = dataclasses.replace(
            SourceInfo.from_dict(task.source_metadata), path=task.input_file.path
        )
    preview_path = _preview_path(task)
    return upscale_video(
        task.input_file.path,
        output_path,
        task.params(),
        options=runtime_options(preview_path=preview_path),
        on_progress=ProgressRecorder(task.pk, preview_path=preview_path),
        should_cancel=CancelCheck(task.pk),
        source_info=source_info,
    )


def runtime_options(*, preview_path: Path | None = None) -> RuntimeOptions:
    """Build the host tuning (threads, buffers, model folder) from settings, for the worker and the CLI."""
    return RuntimeOptions(
        model_dir=str(settings.FLASHVSR_MODEL_DIR),
        decode_threads=settings.FLASHVSR_STREAMING_DECODE_THREADS,
        prefetch_frames=settings.FLASHVSR_STREAMING_PREFETCH_FRAMES,
        lq_max_bytes=settings.FLASHVSR_STREAMING_LQ_MAX_BYTES,
        preview_path=str(preview_path) if preview_path else None,
        preview_interval_s=settings.FLASHVSR_PREVIEW_INTERVAL_SECONDS,
    )


def _result_path(task: Task) -> Path:
    return Path(settings.MEDIA_ROOT) / _result_name(task)


def _result_name(task: Task) -> str:
    return f"results/{task.pk}.{task.container}"


def _preview_path(task: Task) -> Path:
    path = Path(settings.MEDIA_ROOT) / f"previews/{task.pk}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _success_fields(task: Task, output_path: Path, result: UpscaleResult) -> dict:
    preview_path = _preview_path(task)
    return {
        "result_file": _result_name(task),
        "result_size": output_path.stat().st_size,
        "preview_file": f"previews/{task.pk}.jpg" if preview_path.exists() else "",
        "notes": list(task.notes) + list(result.notes),
        "progress": 1.0,
        "processed_frames": result.frames,
        "total_frames": result.frames,
        "eta_seconds": 0.0,
    }


def _finish(task: Task, status: str, **fields) -> str:
    """Store the final state if the task is still running here; returns the status the row now has."""
    now = timezone.now()
    changed = Task.objects.filter(pk=task.pk, status=Status.RUNNING).update(
        status=status, finished_at=now, heartbeat_at=now, **fields
    )
    if changed != 1:
        current = Task.objects.filter(pk=task.pk).values_list("status", flat=True).first()
        logger.warning(
            "Task %s finished as %s, but its row was changed meanwhile to %s; left as is",
            task.pk,
            status,
            current,
        )
        return current or status
    logger.info("Task %s %s", task.pk, status)
    return status


def _drop_interrupted_connection() -> None:
    """Close this thread's database connection after an exception raised from a signal handler.

    The exception can arrive while a query is half sent, which leaves the connection unusable ("another
    command is already in progress"); the next query then opens a fresh connection. Inside a transaction
    (as in tests) the connection is left alone, because closing it would abort the transaction.
    """
    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except Exception:
        logger.warning("Closing the interrupted database connection failed", exc_info=True)
        connection.connection = None


def _finish_timed_out(task: Task, error: TimeoutException) -> str:
    _drop_interrupted_connection()
    limit = settings.FLASHVSR_TASK_TIMEOUT_SECONDS
    logger.error("Task %s timed out after the limit of %d s", task.pk, limit)
    return _finish(
        task,
        Status.FAILED,
        error_message=_(
            "The task was stopped because it ran longer than the time limit of %(limit)d seconds. "
            "A retry would stop at the same limit, so upload a shorter clip or choose a smaller scale "
            "or a faster variant."
        )
        % {"limit": limit},
        error_detail=_technical(error),
    )


def _finish_stopped(task: Task, error: BaseException) -> str:
    """Record a run ended by a worker shutdown (WorkerShutdown, KeyboardInterrupt or another SystemExit)."""
    _drop_interrupted_connection()
    logger.error("Task %s interrupted by %s before it finished", task.pk, type(error).__name__)
    return _finish(
        task,
        Status.INTERRUPTED,
        error_message=_("The worker stopped while processing this video. Retry it."),
        error_detail=_technical(error),
    )


def _technical(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)).strip()


class ProgressRecorder:
    """Progress callback that stores a report on the task row at most once per interval, and the final one."""

    def __init__(
        self,
        task_id,
        *,
        preview_path: Path | None = None,
        interval_s: float = PROGRESS_SAVE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task_id = task_id
        self.preview_path = preview_path
        self.preview_recorded = False
        self.interval_s = interval_s
        self.clock = clock
        self.last_saved_at: float | None = None
        self.saves = 0

    def __call__(self, progress: Progress) -> None:
        now = self.clock()
        is_final = progress.total_frames > 0 and progress.processed_frames >= progress.total_frames
        if not is_final and self.last_saved_at is not None and now - self.last_saved_at < self.interval_s:
            return
        self.last_saved_at = now
        self.saves += 1
        fields = {
            "progress": progress.fraction,
            "processed_frames": progress.processed_frames,
            "frames_per_second": progress.frames_per_second,
            "eta_seconds": progress.eta_seconds,
            "heartbeat_at": timezone.now(),
        }
        if progress.total_frames > 0:
            fields["total_frames"] = progress.total_frames
        if self._preview_appeared():
            fields["preview_file"] = self.preview_path.relative_to(settings.MEDIA_ROOT).as_posix()
            self.preview_recorded = True
        Task.objects.filter(pk=self.task_id, status=Status.RUNNING).update(**fields)
        heartbeat.beat(current_task_id=self.task_id)

    def _preview_appeared(self) -> bool:
        """Return True once, on the first save after the pipeline wrote the preview image."""
        return self.preview_path is not None and not self.preview_recorded and self.preview_path.exists()


class CancelCheck:
    """Cancel check that reads `cancel_requested` from the database at most once per interval."""

    def __init__(
        self,
        task_id,
        *,
        interval_s: float = CANCEL_CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task_id = task_id
        self.interval_s = interval_s
        self.clock = clock
        self.last_checked_at: float | None = None
        self.cancelled = False

    def __call__(self) -> bool:
        if self.cancelled:
            return True
        now = self.clock()
        if self.last_checked_at is not None and now - self.last_checked_at < self.interval_s:
            return False
        self.last_checked_at = now
        self.cancelled = Task.objects.filter(pk=self.task_id, cancel_requested=True).exists()
        return self.cancelled
