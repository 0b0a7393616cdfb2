"""Submitting tasks: probe an upload, check it against the limits, store it and enqueue the GPU job.

Runs in the web process, so it must never import torch: it uses only gpu.params and gpu.video.probe.
"""

from __future__ import annotations

import dataclasses
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gpu.params import SCALES
from gpu.video.probe import SourceInfo, probe

from .models import PARAM_FIELDS, Status, Task

logger = logging.getLogger(__name__)

__all__ = [
    "PARAM_FIELDS",
    "SourceRejected",
    "check_source_limits",
    "enqueue_upscale",
    "largest_scale_within",
    "probe_upload",
    "submit_task",
]


class SourceRejected(Exception):
    """A decodable video that is over one of the site's limits; `message` is shown to the user."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def probe_upload(path: str) -> SourceInfo:
    """Probe an uploaded file by content; raises gpu.params.InputError with a message for the user."""
    return probe(path)


def largest_scale_within(width: int, height: int, max_output_pixels: int) -> int | None:
    """Return the largest supported scale whose output stays within `max_output_pixels`, or None."""
    fitting = [scale for scale in SCALES if width * scale * height * scale <= max_output_pixels]
    return max(fitting) if fitting else None


def check_source_limits(info: SourceInfo, scale: int) -> None:
    """Raise SourceRejected when the source is too long, too large, or its output at `scale` is too large."""
    max_duration = settings.FLASHVSR_MAX_DURATION_SECONDS
    if info.duration > max_duration:
        raise SourceRejected(
            _(
                "The video is %(duration).1f seconds long; the limit is %(limit)g seconds. "
                "Cut it into shorter parts."
            )
            % {"duration": info.duration, "limit": max_duration},
            code="too_long",
        )
    source_pixels = info.width * info.height
    if source_pixels > settings.FLASHVSR_MAX_SOURCE_PIXELS:
        raise SourceRejected(
            _(
                "The video is %(width)d×%(height)d (%(pixels)d pixels); "
                "the limit is %(limit)d pixels per frame. "
                "Scale it down before uploading."
            )
            % {
                "width": info.width,
                "height": info.height,
                "pixels": source_pixels,
                "limit": settings.FLASHVSR_MAX_SOURCE_PIXELS,
            },
            code="too_many_source_pixels",
        )
    _check_output_size(info, scale)


def _check_output_size(info: SourceInfo, scale: int) -> None:
    max_output = settings.FLASHVSR_MAX_OUTPUT_PIXELS
    if info.width * scale * info.height * scale <= max_output:
        return
    values = {
        "width": info.width * scale,
        "height": info.height * scale,
        "scale": scale,
        "limit": max_output,
    }
    fitting_scale = largest_scale_within(info.width, info.height, max_output)
    if fitting_scale is None:
        message = _(
            "At %(scale)d× the result would be %(width)d×%(height)d, "
            "over the limit of %(limit)d output pixels, "
            "and even the smallest scale is too large. Upload a smaller video."
        )
    else:
        message = _(
            "At %(scale)d× the result would be %(width)d×%(height)d, "
            "over the limit of %(limit)d output pixels. "
            "Choose %(fitting_scale)d× or less."
        )
        values["fitting_scale"] = fitting_scale
    raise SourceRejected(message % values, code="output_too_large")


def submit_task(owner, uploaded_file, info: SourceInfo, upscale_fields: dict) -> Task:
    """Store the upload under a generated name, create its Task and enqueue the job once the row is committed.

    The upload is a temporary file on the media volume, so storing it is a rename. If the row cannot be
    written, the stored file is removed again.
    """
    task = Task(
        owner=owner,
        original_filename=_display_name(uploaded_file.name),
        input_size=uploaded_file.size,
        input_sha256=getattr(uploaded_file, "sha256", ""),
        total_frames=info.frame_count,
        **upscale_fields,
    )
    task.input_file.save("upload", uploaded_file, save=False)
    # The probe ran on the temporary upload; record the stored file's path instead.
    task.source_metadata = dataclasses.replace(info, path=task.input_file.path).to_dict()
    try:
        with transaction.atomic():
            task.save()
            transaction.on_commit(lambda: _enqueue_or_fail(task))
    except BaseException:
        task.input_file.delete(save=False)
        raise
    logger.info(
        "Task %s submitted by user %s: %s, %d bytes, variant %s, scale %d",
        task.pk,
        owner.pk,
        task.original_filename,
        task.input_size,
        task.variant,
        task.scale,
    )
    return task


def enqueue_upscale(task: Task) -> str:
    """Put the task's GPU job on the gpu cluster's queue; returns the django-q2 task id."""
    from django_q.tasks import async_task

    queue_id = async_task(
        "tasks_app.jobs.run_upscale",
        str(task.pk),
        cluster=settings.Q_GPU_CLUSTER,
        task_name=f"upscale-{task.pk}",
        group="upscale",
    )
    logger.info("Task %s enqueued on cluster %s as %s", task.pk, settings.Q_GPU_CLUSTER, queue_id)
    return queue_id


def _enqueue_or_fail(task: Task) -> None:
    """Enqueue a committed task; if the broker rejects it, fail the task so it does not wait forever."""
    try:
        enqueue_upscale(task)
    except Exception as error:
        logger.exception("Task %s could not be enqueued on cluster %s", task.pk, settings.Q_GPU_CLUSTER)
        Task.objects.filter(pk=task.pk, status=Status.QUEUED).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            error_message=_(
                "The task could not be put on the queue. Retry it; if that fails too, "
                "ask the operator to check the task queue."
            ),
            error_detail=f"{type(error).__name__}: {error}",
        )


def _display_name(name: str) -> str:
    """Return the user's file name for display only: its last path part, cut to fit the column."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "video"
    return base[-255:]
