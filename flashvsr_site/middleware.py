"""Site-wide request middleware: the task id in log records, and login redirects that htmx can follow."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

from .logs import reset_task_id, set_task_id


class TaskLogContextMiddleware:
    """Put the `task_id` URL argument, when the view has one, on every log record of the request."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            token = getattr(request, "_task_log_token", None)
            if token is not None:
                reset_task_id(token)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        task_id = view_kwargs.get("task_id")
        if task_id:
            request._task_log_token = set_task_id(task_id)


class HtmxLoginRedirectMiddleware:
    """Turn the login redirect of an htmx request into an `HX-Redirect` that reloads the whole page.

    htmx follows a plain 302 inside its XMLHttpRequest and would swap the login page into the polled table.
    The `next` parameter points to the page the browser shows (the `HX-Current-URL` header), not to the
    partial URL that was polled.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or not self._is_login_redirect(response):
            return response
        next_url = self._current_page_path(request) or request.get_full_path()
        login_redirect = redirect_to_login(next_url, resolve_url(settings.LOGIN_URL))
        return HttpResponseClientRedirect(login_redirect["Location"])

    @staticmethod
    def _is_login_redirect(response: HttpResponse) -> bool:
        if response.status_code != 302:
            return False
        location = urlsplit(response.get("Location", "")).path
        return location == resolve_url(settings.LOGIN_URL)

    @staticmethod
    def _current_page_path(request: HttpRequest) -> str:
        current = request.htmx.current_url
        if not current:
            return ""
        parts = urlsplit(current)
        # Keep only a same-site path, so a forged header cannot make the login page redirect elsewhere.
        if parts.netloc and parts.netloc != request.get_host():
            return ""
        return parts.path + (f"?{parts.query}" if parts.query else "")
