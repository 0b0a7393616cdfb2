"""CSRF protection on every POST, with the token sent the way htmx sends it (the X-CSRFToken header)."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from tasks_app.models import Status, Task

from .test_personas import SITE_URLS, route_path, site_routes

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def page_csrf_token(client: Client) -> str:
    """Return the token that base.html puts into hx-headers on <body>, as htmx reads it."""
    page = client.get(reverse("home")).content.decode()
    match = re.search(r"<body[^>]*hx-headers='([^']*)'", page)
    assert match, "the <body> tag has no hx-headers attribute"
    return json.loads(match.group(1))["X-CSRFToken"]


def post_routes():
    # A URL missing from SITE_URLS fails test_every_url_has_persona_case; it is left out here.
    return [
        route for route in site_routes() if route.name in SITE_URLS and SITE_URLS[route.name].method == "post"
    ]


def test_body_carries_csrf_header_for_htmx(csrf_client):
    token = page_csrf_token(csrf_client)

    assert len(token) == 64
    assert csrf_client.cookies["csrftoken"].value


def test_post_without_token_is_forbidden(csrf_client, finished_task):
    routes = post_routes()
    assert routes
    for route in routes:
        path = route_path(route, {"task_id": str(finished_task.pk)})
        response = csrf_client.post(path, {}, headers={"HX-Request": "true"})
        assert response.status_code == 403, path

    finished_task.refresh_from_db()
    assert finished_task.status == Status.SUCCEEDED
    assert Task.objects.count() == 1


def test_post_with_wrong_token_is_forbidden(csrf_client, finished_task):
    page_csrf_token(csrf_client)
    path = reverse("task_delete", args=[finished_task.pk])

    response = csrf_client.post(path, {}, headers={"X-CSRFToken": "x" * 64, "HX-Request": "true"})

    assert response.status_code == 403
    assert Task.objects.filter(pk=finished_task.pk).exists()


def test_htmx_header_token_is_accepted(csrf_client, make_task):
    token = page_csrf_token(csrf_client)
    queued = make_task(status=Status.QUEUED)

    response = csrf_client.post(
        reverse("task_cancel", args=[queued.pk]), {}, headers={"X-CSRFToken": token, "HX-Request": "true"}
    )

    assert response.status_code == 200
    queued.refresh_from_db()
    assert queued.status == Status.CANCELLED


def test_form_field_token_is_accepted(csrf_client, make_task):
    token = page_csrf_token(csrf_client)
    queued = make_task(status=Status.QUEUED)

    response = csrf_client.post(reverse("task_cancel", args=[queued.pk]), {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    queued.refresh_from_db()
    assert queued.status == Status.CANCELLED


def test_public_posts_need_token(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.post(reverse("logout")).status_code == 403
    assert client.post(reverse("set_language"), {"language": "en"}).status_code == 403
    assert (
        client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"}).status_code
        == 403
    )


def test_login_form_with_token_logs_in(user):
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("login")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    response = client.post(
        reverse("login"), {"username": "alice", "password": "alice-password-1", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
