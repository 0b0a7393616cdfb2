"""Task actions (cancel, retry, delete) and the status panel partial.

Every action is a POST form that works without JavaScript: it stores a message and redirects to the page the
form came from. An htmx request that targets the task table or the task's progress section gets that
fragment back with the messages region swapped out of band, and any other htmx request gets an HX-Redirect.
Only the owner may act on a task; anyone else gets 404.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from .models import Status, Task
from .operations import OperationRejected, cancel_task, delete_task, retry_task
from .status import collect_status
from .views import TASK_PROGRESS_ID, TASK_TABLE_ID, _own_task, _table_context

logger = logging.getLogger(__name__)


@login_required
@require_POST
def task_cancel(request: HttpRequest, task_id) -> HttpResponse:
    task = _own_task(request, task_id)
    try:
        status = cancel_task(task)
    except OperationRejected as rejection:
        return _rejected(request, task, rejection)
    if status == Status.CANCELLED:
        messages.success(request, _("The task was cancelled."))
    else:
        messages.info(request, _("Cancelling: the worker stops this task within a few seconds."))
    return _after_action(request, task, default_url=reverse("task_detail", args=[task.pk]))


@login_required
@require_POST
def task_retry(request: HttpRequest, task_id) -> HttpResponse:
    task = _own_task(request, task_id)
    try:
        retry = retry_task(task)
    except OperationRejected as rejection:
        return _rejected(request, task, rejection)
    messages.success(
        request, _("The task was queued again as attempt %(attempt)d.") % {"attempt": retry.attempt}
    )
    return _table_or_redirect(request, task, reverse("task_detail", args=[retry.pk]))


@login_required
@require_POST
def task_delete(request: HttpRequest, task_id) -> HttpResponse:
    task = _own_task(request, task_id)
    try:
        delete_task(task)
    except OperationRejected as rejection:
        return _rejected(request, task, rejection)
    messages.success(request, _("“%(name)s” and its files were deleted.") % {"name": task.original_filename})
    return _table_or_redirect(request, task, reverse("home"))


@login_required
@require_GET
def status_panel(request: HttpRequest) -> HttpResponse:
    """Render the status panel alone for its 30-second poll; unreadable sections show "unavailable"."""
    return render(request, "tasks_app/partials/status_panel.html", {"status": collect_status(request.user)})


def _after_action(request: HttpRequest, task: Task, *, default_url: str) -> HttpResponse:
    if request.htmx and request.htmx.target in (TASK_TABLE_ID, TASK_PROGRESS_ID):
        return _render_fragment(request, task)
    return _redirect(request, _next_url(request, default_url))


def _rejected(request: HttpRequest, task: Task, rejection: OperationRejected) -> HttpResponse:
    messages.error(request, rejection.message)
    return _after_action(request, task, default_url=reverse("task_detail", args=[task.pk]))


def _table_or_redirect(request: HttpRequest, task: Task, url: str) -> HttpResponse:
    """Return the refreshed task table when the request targets it, else a redirect to `url`.

    The task page of a deleted task is gone, and a retry continues on the new task's page, so the progress
    section of the old page is not re-rendered.
    """
    if request.htmx and request.htmx.target == TASK_TABLE_ID:
        return _render_fragment(request, task)
    return _redirect(request, url)


def _render_fragment(request: HttpRequest, task: Task) -> HttpResponse:
    """Render the fragment the htmx request targets, then the messages region as an out-of-band swap."""
    if request.htmx.target == TASK_TABLE_ID:
        context = {**_table_context(request), "action_next": reverse("home")}
        fragment = render_to_string("tasks_app/partials/task_table.html", context, request=request)
    else:
        task = Task.objects.get(pk=task.pk)
        context = {
            "task": task,
            "source": task.source_metadata or {},
            "action_next": reverse("task_detail", args=[task.pk]),
        }
        fragment = render_to_string("tasks_app/task_detail.html#task-progress", context, request=request)
    notices = render_to_string("tasks_app/partials/messages.html", {"oob": True}, request=request)
    return HttpResponse(fragment + notices)


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def _next_url(request: HttpRequest, default_url: str) -> str:
    candidate = request.POST.get("next", "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default_url
