"""Pages and htmx partials: home (upload form and task table), task detail, and the result download."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from . import services
from .downloads import stored_file_response
from .forms import UploadForm
from .models import ACTIVE_STATUSES, Task
from .uploads import REJECTION_ATTRIBUTE, queued_task_limit_message

logger = logging.getLogger(__name__)

TASK_TABLE_ID = "task-table"
TASK_PROGRESS_ID = "task-progress"


def _own_task(request: HttpRequest, task_id) -> Task:
    """Return the request user's task, or raise 404 for anyone else's so other users' ids stay hidden."""
    return get_object_or_404(Task, pk=task_id, owner=request.user)


TASK_TABLE_ROWS = 200


def _table_context(request: HttpRequest) -> dict:
    owned = Task.objects.filter(owner=request.user)
    tasks = list(owned[:TASK_TABLE_ROWS])
    return {
        "tasks": tasks,
        "tasks_not_shown": owned.count() - len(tasks) if len(tasks) == TASK_TABLE_ROWS else 0,
        "table_polling": owned.filter(status__in=ACTIVE_STATUSES).exists(),
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
def home(request: HttpRequest) -> HttpResponse:
    """Render the home page, or only the task table for an htmx poll that targets it."""
    if request.htmx and request.htmx.target == TASK_TABLE_ID:
        return render(request, "tasks_app/partials/task_table.html", _table_context(request))
    context = {"form": UploadForm(), **_table_context(request)}
    return render(request, "tasks_app/home.html", context)


@login_required
@require_POST
def task_create(request: HttpRequest) -> HttpResponse:
    """Accept an upload; an invalid one re-renders the form with status 200, so htmx swaps it in."""
    # Reading request.FILES parses the body, and so runs the upload handler that may record a rejection. The
    # handler stops a file over the queue cap; the second check covers a request that carries no file.
    files = request.FILES
    rejection = getattr(request, REJECTION_ATTRIBUTE, None) or queued_task_limit_message(request.user)
    form = UploadForm(request.POST, files, upload_rejection=rejection)
    if not form.is_valid():
        _discard_uploads(request)
        logger.info("Upload by user %s rejected: %s", request.user.pk, form.errors.get_json_data())
        return _render_form(request, form)

    task = services.submit_task(
        request.user, form.cleaned_data["video"], form.source_info, form.upscale_fields()
    )
    if request.htmx:
        context = {"form": UploadForm(), "created_task": task, **_table_context(request)}
        response = render(request, "tasks_app/partials/upload_created.html", context)
        response["HX-Trigger"] = "task-created"  # the status panel refreshes on this event
        return response
    return HttpResponseRedirect(reverse("home"))


def _render_form(request: HttpRequest, form: UploadForm) -> HttpResponse:
    template = "tasks_app/home.html#upload-form" if request.htmx else "tasks_app/home.html"
    context = {"form": form}
    if not request.htmx:
        context.update(_table_context(request))
    return render(request, template, context)


def _discard_uploads(request: HttpRequest) -> None:
    """Close (and so delete) rejected temporary upload files now rather than at the end of the response."""
    for uploaded in request.FILES.values():
        uploaded.close()


@login_required
@require_GET
@vary_on_headers("HX-Request")
def task_detail(request: HttpRequest, task_id) -> HttpResponse:
    """Render the task page, or only its progress section for an htmx poll that targets it."""
    task = _own_task(request, task_id)
    context = {"task": task, "source": task.source_metadata or {}}
    if request.htmx and request.htmx.target == TASK_PROGRESS_ID:
        return render(request, "tasks_app/task_detail.html#task-progress", context)
    return render(request, "tasks_app/task_detail.html", context)


@login_required
@require_http_methods(["GET", "HEAD"])
def task_download(request: HttpRequest, task_id) -> HttpResponse:
    """Serve the result file with HTTP Range support. With `?inline=1` a <video> element can play it."""
    task = _own_task(request, task_id)
    if not task.result_file:
        raise Http404("This task has no result to download.")
    as_attachment = request.GET.get("inline") != "1"
    try:
        return stored_file_response(
            request, task.result_file, filename=task.download_filename, as_attachment=as_attachment
        )
    except FileNotFoundError:
        logger.error("Task %s has result_file %s but the file is missing", task.pk, task.result_file.name)
        raise Http404("The result file is missing.") from None
