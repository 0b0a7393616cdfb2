"""Owner-only image and video endpoints of the task page: live preview, comparison stills, source video."""

from __future__ import annotations

import logging
import mimetypes
from pathlib import PurePath

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from . import comparison
from .downloads import stored_file_response
from .models import Status
from .views import _own_task

logger = logging.getLogger(__name__)

# Browsers pick a player by Content-Type; stored uploads have generated names without an extension, so the
# type comes from the original file name.
VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".ogv": "video/ogg",
}


@login_required
@require_http_methods(["GET", "HEAD"])
def task_preview(request: HttpRequest, task_id) -> HttpResponse:
    """Serve the most recent preview frame the worker wrote; never cached, because it changes during a run."""
    task = _own_task(request, task_id)
    if not task.preview_file:
        raise Http404("This task has no preview yet.")
    try:
        handle = open(task.preview_file.path, "rb")
    except FileNotFoundError:
        raise Http404("The preview file is missing.") from None
    response = FileResponse(handle, content_type="image/jpeg")
    response["Cache-Control"] = "no-cache, no-store, private"
    return response


@login_required
@require_http_methods(["GET", "HEAD"])
def task_comparison_image(request: HttpRequest, task_id, kind: str) -> HttpResponse:
    """Serve the "before" (Lanczos-scaled source) or "after" (result) still of a succeeded task."""
    task = _own_task(request, task_id)
    if kind not in comparison.KINDS or task.status != Status.SUCCEEDED:
        raise Http404("No comparison image for this task.")
    try:
        path = comparison.ensure_image(task, kind)
    except comparison.ComparisonUnavailable:
        raise Http404("The comparison image could not be made.") from None
    response = FileResponse(open(path, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_http_methods(["GET", "HEAD"])
def task_source(request: HttpRequest, task_id) -> HttpResponse:
    """Serve the uploaded source inline for the page's <video> element, with HTTP Range support."""
    task = _own_task(request, task_id)
    if not task.input_file:
        raise Http404("This task has no source file.")
    try:
        return stored_file_response(
            request,
            task.input_file,
            filename=task.original_filename,
            as_attachment=False,
            content_type=source_content_type(task.original_filename),
        )
    except FileNotFoundError:
        logger.error("Task %s has input_file %s but the file is missing", task.pk, task.input_file.name)
        raise Http404("The source file is missing.") from None


def source_content_type(original_filename: str) -> str:
    suffix = PurePath(original_filename).suffix.lower()
    return VIDEO_TYPES.get(suffix) or mimetypes.guess_type(original_filename)[0] or "application/octet-stream"
