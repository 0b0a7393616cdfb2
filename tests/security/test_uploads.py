"""Upload limits under attack: bodies over the size limit, anonymous uploads, crafted names, the queue cap."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django_q.models import OrmQ

from tasks_app.models import Status, Task
from tasks_app.uploads import LimitedTemporaryFileUploadHandler
from tests.video.clips import make_clip

pytestmark = pytest.mark.django_db

LIMIT = 256 * 1024


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


@pytest.fixture
def temp_files_seen(monkeypatch, media_root):
    """Record the files in the upload temp folder each time the handler receives a chunk."""
    seen: list[list[str]] = []
    original = LimitedTemporaryFileUploadHandler.receive_data_chunk

    def recording(handler, raw_data, start):
        seen.append(sorted(path.name for path in (media_root / "tmp").iterdir()))
        return original(handler, raw_data, start)

    monkeypatch.setattr(LimitedTemporaryFileUploadHandler, "receive_data_chunk", recording)
    return seen


@pytest.fixture
def csrf_client(user):
    """A logged-in client that enforces CSRF, so the body is parsed by CsrfViewMiddleware as in production."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("home"))
    return client


def csrf_headers(client: Client, **extra: str) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"].value, **extra}


def upload(client: Client, content: bytes, *, name: str = "big.mp4", **headers: str):
    video = io.BytesIO(content)
    video.name = name
    data = {"variant": "lanczos", "scale": "2", "video": video}
    return client.post(reverse("task_create"), data, headers=headers)


def test_oversized_body_stopped_while_streaming(csrf_client, settings, media_root, temp_files_seen, caplog):
    settings.FLASHVSR_MAX_UPLOAD_BYTES = LIMIT
    caplog.set_level(logging.INFO, logger="tasks_app.uploads")
    # Declared size within the allowance for multipart overhead, so only the streaming count can stop it.
    body = b"\0" * (LIMIT + 32 * 1024)

    response = upload(csrf_client, body, **csrf_headers(csrf_client))

    assert response.status_code == 200
    assert "larger than the upload limit of 256" in response.content.decode()
    assert Task.objects.count() == 0
    assert OrmQ.objects.count() == 0
    assert files_under(media_root) == []
    assert temp_files_seen, "the handler never received data"
    assert all(len(listing) == 1 for listing in temp_files_seen), (
        "the upload was not written to MEDIA_ROOT/tmp"
    )
    stopped = re.search(r"Upload stopped after (\d+) bytes", caplog.text)
    assert stopped, caplog.text
    assert LIMIT < int(stopped.group(1)) <= LIMIT + 64 * 1024


def test_declared_oversize_stopped_before_data(csrf_client, settings, media_root, temp_files_seen, caplog):
    settings.FLASHVSR_MAX_UPLOAD_BYTES = 1024
    caplog.set_level(logging.INFO, logger="tasks_app.uploads")

    response = upload(csrf_client, b"\0" * (200 * 1024), **csrf_headers(csrf_client, HX_Request="true"))

    assert response.status_code == 200
    assert "larger than the upload limit of 1.0" in response.content.decode()
    assert temp_files_seen == []
    assert "Upload stopped after 0 bytes" in caplog.text
    assert files_under(media_root) == []


def test_anonymous_upload_writes_nothing(settings, media_root, temp_files_seen):
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("login"))

    response = upload(client, b"\0" * (64 * 1024), **csrf_headers(client))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert temp_files_seen == []
    assert files_under(media_root) == []
    assert Task.objects.count() == 0


def test_crafted_file_name_not_used_on_disk(user_client, tmp_path, media_root):
    clip = make_clip(tmp_path / "clip.mp4", frames=5, fps=10)

    response = upload(user_client, clip.read_bytes(), name="../../etc/cron.d/evil.mp4")

    assert response.status_code == 302
    task = Task.objects.get()
    assert task.original_filename == "evil.mp4"
    assert re.fullmatch(r"uploads/[0-9a-f]{32}", task.input_file.name)
    assert files_under(media_root) == [task.input_file.name]


def test_queue_cap_rejects_extra_upload(
    user_client, settings, make_task, tmp_path, media_root, temp_files_seen
):
    settings.FLASHVSR_MAX_QUEUED_TASKS_PER_USER = 2
    make_task(status=Status.QUEUED)
    make_task(status=Status.QUEUED)
    before = files_under(media_root)
    clip = make_clip(tmp_path / "clip.mp4", frames=5, fps=10)

    response = upload(user_client, clip.read_bytes(), HX_Request="true")

    assert response.status_code == 200
    assert "You already have 2 videos waiting in the queue" in response.content.decode()
    assert Task.objects.count() == 2
    assert temp_files_seen == []
    assert files_under(media_root) == before


def test_queue_cap_counts_only_own_queued_tasks(
    user_client, settings, make_task, other_user, tmp_path, media_root
):
    settings.FLASHVSR_MAX_QUEUED_TASKS_PER_USER = 2
    make_task(status=Status.QUEUED)
    make_task(status=Status.RUNNING)
    make_task(status=Status.SUCCEEDED)
    make_task(owner=other_user, status=Status.QUEUED)
    make_task(owner=other_user, status=Status.QUEUED)
    clip = make_clip(tmp_path / "clip.mp4", frames=5, fps=10)

    response = upload(user_client, clip.read_bytes())

    assert response.status_code == 302
    assert Task.objects.filter(owner__username="alice", status=Status.QUEUED).count() == 2


def test_queue_cap_zero_means_no_cap(user_client, settings, make_task, tmp_path):
    settings.FLASHVSR_MAX_QUEUED_TASKS_PER_USER = 0
    for _ in range(6):
        make_task(status=Status.QUEUED)
    clip = make_clip(tmp_path / "clip.mp4", frames=5, fps=10)

    response = upload(user_client, clip.read_bytes())

    assert response.status_code == 302
    assert Task.objects.filter(status=Status.QUEUED).count() == 7


def test_queue_cap_applies_without_file(user_client, settings, make_task):
    settings.FLASHVSR_MAX_QUEUED_TASKS_PER_USER = 1
    make_task(status=Status.QUEUED)

    response = user_client.post(reverse("task_create"), {"variant": "lanczos"})

    assert response.status_code == 200
    assert "You already have 1 video waiting in the queue" in response.content.decode()
