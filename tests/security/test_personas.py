"""Every URL in the URLconf, requested by the owner, by another user and by an anonymous visitor.

The URL list comes from the resolver, so a URL added without an entry in SITE_URLS, PUBLIC_URLS or the admin
rules fails `test_every_url_has_persona_case`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from PIL import Image

from tasks_app.models import Status, Task, WorkerHeartbeat
from tests.video.clips import make_clip

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class SiteUrl:
    """How the owner of a task uses a login-protected URL of the site."""

    method: str
    owner_status: int
    task_status: str = Status.SUCCEEDED


# Login-protected URLs of the site, by URL name. A URL with a `task_id` argument gets alice's task.
SITE_URLS = {
    "home": SiteUrl("get", 200),
    "task_create": SiteUrl("post", 200),
    "task_detail": SiteUrl("get", 200),
    "task_download": SiteUrl("get", 200),
    "task_preview": SiteUrl("get", 200),
    "task_comparison_image": SiteUrl("get", 200),
    "task_source": SiteUrl("get", 200),
    "task_cancel": SiteUrl("post", 302, task_status=Status.QUEUED),
    "task_retry": SiteUrl("post", 302, task_status=Status.FAILED),
    "task_delete": SiteUrl("post", 302),
    "status_panel": SiteUrl("get", 200),
}

# URLs that anyone may request: logging in and out, and choosing the language.
PUBLIC_URLS = {"login", "logout", "set_language", "admin:login", "admin:logout"}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: URLPattern
    regex_parts: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return self.name.startswith("admin:")


def iter_routes(resolver: URLResolver | None = None, parts: tuple[str, ...] = (), namespace: str = ""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        regex = entry.pattern.regex.pattern
        if isinstance(entry, URLResolver):
            child_namespace = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from iter_routes(entry, parts + (regex,), child_namespace)
        else:
            yield Route(f"{namespace}{entry.name or entry.lookup_str}", entry, parts + (regex,))


def build_path(route: Route, values: dict[str, str]) -> str:
    """Turn the route's regular expressions into one concrete path, filling named groups from `values`."""
    path = ""
    for regex in route.regex_parts:
        text = regex.removeprefix("^").removesuffix("\\Z").removesuffix("$")
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: values[match.group(1)], text)
        path += text.replace("\\", "")
    return "/" + path


def route_path(route: Route, values: dict[str, str]) -> str:
    path = build_path(route, values)
    match = resolve(path)
    assert match.func == route.pattern.callback, f"{path} does not resolve to {route.name}"
    return path


@pytest.fixture
def alice_task(finished_task):
    return finished_task


@pytest.fixture
def path_values(alice_task, user):
    return {
        "task_id": str(alice_task.pk),
        "object_id": str(alice_task.pk),
        "id": str(user.pk),
        "content_type_id": str(ContentType.objects.get_for_model(Task).pk),
        "app_label": "auth",
        "url": "no-such-page/",
        "kind": "before",
    }


def send(client, method: str, path: str, **headers):
    return getattr(client, method)(path, headers=headers)


def assert_login_redirect(response, path: str) -> None:
    assert response.status_code == 302, f"{path}: expected a login redirect, got {response.status_code}"
    location = urlsplit(response["Location"])
    assert location.path == reverse("login"), f"{path}: redirected to {response['Location']}"


def assert_login_target(url: str, *, next_path: str) -> None:
    parts = urlsplit(url)
    assert parts.path == reverse("login")
    assert parse_qs(parts.query)["next"] == [next_path]


def site_routes() -> list[Route]:
    return [route for route in iter_routes() if not route.is_admin and route.name not in PUBLIC_URLS]


def admin_routes() -> list[Route]:
    return [route for route in iter_routes() if route.is_admin and route.name not in PUBLIC_URLS]


def test_every_url_has_persona_case():
    uncovered = [route.name for route in site_routes() if route.name not in SITE_URLS]
    assert uncovered == [], f"add these URL names to SITE_URLS or PUBLIC_URLS in {__name__}: {uncovered}"


def test_anonymous_redirected_to_login_everywhere(client, path_values):
    for route in site_routes():
        path = route_path(route, path_values)
        for method in ("get", "post"):
            response = send(client, method, path)
            assert_login_redirect(response, path)
            assert parse_qs(urlsplit(response["Location"]).query)["next"] == [path]


def test_anonymous_htmx_gets_client_redirect(client, path_values):
    page = reverse("home")
    for route in site_routes():
        path = route_path(route, path_values)
        response = send(client, "get", path, HX_Request="true", HX_Current_URL=f"http://testserver{page}")
        assert response.status_code == 200, path
        assert_login_target(response["HX-Redirect"], next_path=page)
        assert response.content == b"", path


def test_anonymous_htmx_redirect_ignores_foreign_current_url(client):
    response = client.get(
        reverse("home"), headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/steal"}
    )
    assert_login_target(response["HX-Redirect"], next_path=reverse("home"))


@pytest.mark.parametrize("x_accel_prefix", ["", "/protected-media/"])
def test_stranger_gets_404_for_task_urls(
    client, other_user, alice_task, path_values, media_root, settings, x_accel_prefix
):
    settings.FLASHVSR_X_ACCEL_REDIRECT_PREFIX = x_accel_prefix
    client.force_login(other_user)
    files_before = sorted(str(path) for path in media_root.rglob("*"))
    task_routes = [route for route in site_routes() if "task_id" in route.pattern.pattern.regex.groupindex]
    assert task_routes, "the URLconf has no task URLs"
    for route in task_routes:
        path = route_path(route, path_values)
        for method in ("get", "post"):
            response = send(client, method, path)
            assert response.status_code in (404, 405), f"{method.upper()} {path}: {response.status_code}"
            assert "X-Accel-Redirect" not in response

    alice_task.refresh_from_db()
    assert alice_task.status == Status.SUCCEEDED
    assert alice_task.cancel_requested is False
    assert Task.objects.count() == 1
    assert sorted(str(path) for path in media_root.rglob("*")) == files_before


def test_stranger_pages_show_no_foreign_rows(client, other_user, alice_task, path_values):
    client.force_login(other_user)
    secret_markers = (str(alice_task.pk), alice_task.original_filename)
    plain_routes = [route for route in site_routes() if not route.pattern.pattern.regex.groupindex]
    for route in plain_routes:
        path = route_path(route, path_values)
        spec = SITE_URLS[route.name]
        variants = [{}, {"HX-Request": "true", "HX-Target": "task-table"}, {"HX-Request": "true"}]
        for headers in variants:
            response = send(client, spec.method, path, **headers)
            assert response.status_code in (200, 204, 302), f"{path} {headers}: {response.status_code}"
            body = response.content.decode()
            for marker in secret_markers:
                assert marker not in body, f"{path} {headers} shows alice's {marker!r}"


@pytest.fixture
def clip_bytes(tmp_path) -> bytes:
    return make_clip(tmp_path / "clip.mp4", frames=5, fps=10).read_bytes()


def make_owned_task(make_task, status: str, clip: bytes) -> Task:
    """Create a task whose input, result and preview are real files, as a finished run leaves them."""
    task = make_task(input_bytes=clip, status=status, original_filename="mine.mp4", scale=2)
    task.result_file.save(f"{task.pk}.mp4", ContentFile(clip), save=False)
    preview = io.BytesIO()
    Image.new("RGB", (128, 96), "gray").save(preview, format="JPEG")
    task.preview_file.save(f"{task.pk}.jpg", ContentFile(preview.getvalue()), save=False)
    task.save()
    return task


def test_owner_reaches_every_site_url(user_client, path_values, make_task, clip_bytes):
    for route in site_routes():
        spec = SITE_URLS[route.name]
        values = dict(path_values)
        if "task_id" in route.pattern.pattern.regex.groupindex:
            values["task_id"] = str(make_owned_task(make_task, spec.task_status, clip_bytes).pk)
        path = route_path(route, values)
        response = send(user_client, spec.method, path)
        assert response.status_code == spec.owner_status, f"{spec.method.upper()} {path}"


def test_owner_sees_own_task_on_pages(user_client, alice_task):
    home = user_client.get(reverse("home")).content.decode()
    table = user_client.get(reverse("home"), headers={"HX-Request": "true", "HX-Target": "task-table"})

    assert alice_task.original_filename in home
    assert alice_task.original_filename in table.content.decode()


def test_admin_urls_need_staff(client, user, path_values):
    routes = admin_routes()
    assert routes, "the admin site has no URLs"
    admin_login = reverse("admin:login")
    for persona in ("anonymous", "user"):
        if persona == "user":
            client.force_login(user)
        for route in routes:
            path = route_path(route, path_values)
            response = client.get(path)
            assert response.status_code == 302, f"{persona} GET {path}: {response.status_code}"
            assert urlsplit(response["Location"]).path == admin_login, f"{persona} GET {path}"


def test_staff_sees_every_users_task_in_admin(client, django_user_model, alice_task, other_user, make_task):
    bob_task = make_task(owner=other_user, original_filename="bobs-clip.mp4")
    staff = django_user_model.objects.create_superuser(username="root", password="root-password-1")
    client.force_login(staff)

    changelist = client.get(reverse("admin:tasks_app_task_changelist"))
    alice_page = client.get(reverse("admin:tasks_app_task_change", args=[alice_task.pk]))

    assert changelist.status_code == 200
    assert "holiday.mp4" in changelist.content.decode()
    assert "bobs-clip.mp4" in changelist.content.decode()
    assert alice_page.status_code == 200
    assert bob_task.pk != alice_task.pk


def test_public_urls_answer_anonymous(client):
    assert client.get(reverse("login")).status_code == 200
    assert client.post(reverse("set_language"), {"language": "en", "next": "/"}).status_code == 302
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("admin:login")).status_code == 200


def test_status_panel_counts_only_own_tasks(client, user, other_user, alice_task):
    WorkerHeartbeat.objects.create(
        worker_id="gpu-host:4242",
        host="gpu-host",
        pid=4242,
        cluster="gpu",
        current_task=alice_task,
        seen_at=timezone.now(),
    )

    client.force_login(other_user)
    bob_panel = client.get(reverse("status_panel")).content.decode()
    client.force_login(user)
    alice_panel = client.get(reverse("status_panel")).content.decode()

    assert re.search(r"Succeeded: 0\b", bob_panel)
    assert re.search(r"Succeeded: 1\b", alice_panel)
    assert str(alice_task.pk) not in bob_panel
    assert "gpu-host:4242" in bob_panel
