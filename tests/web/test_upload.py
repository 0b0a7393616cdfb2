import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse
from django_q.models import OrmQ

from tasks_app.models import Status, Task
from tests.video.clips import make_audio_file, make_clip

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def post_upload(client, path: Path, *, htmx: bool = False, **fields):
    data = {"variant": "lanczos", "scale": "2", **fields}
    headers = {"HX-Request": "true"} if htmx else {}
    with open(path, "rb") as handle:
        data["video"] = handle
        return client.post(reverse("task_create"), data, headers=headers)


def assert_rejected(response, media_root: Path, before: list[str], *words: str) -> None:
    assert response.status_code == 200
    page = response.content.decode()
    for word in words:
        assert word in page
    assert Task.objects.count() == 0
    assert OrmQ.objects.count() == 0
    assert files_under(media_root) == before


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "holiday.mp4", frames=5, fps=10)


def test_upload_accepted_creates_queued_task(
    user_client, user, clip, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_upload(user_client, clip, crf="20")

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    task = Task.objects.get()
    assert task.owner == user
    assert task.status == Status.QUEUED
    assert task.original_filename == "holiday.mp4"
    assert task.variant == "lanczos"
    assert task.scale == 2
    assert task.crf == 20
    assert task.input_size == clip.stat().st_size
    assert task.input_sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert task.source_metadata["width"] == 64
    assert task.source_metadata["height"] == 48
    assert task.total_frames == 5
    assert task.input_file.name.startswith("uploads/")
    assert "holiday" not in task.input_file.name
    assert Path(task.input_file.path).read_bytes() == clip.read_bytes()
    assert files_under(media_root) == [task.input_file.name]
    assert len(callbacks) == 1


def test_upload_enqueues_on_gpu_cluster_after_commit(user_client, clip, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_upload(user_client, clip)
    assert OrmQ.objects.count() == 0

    for callback in callbacks:
        callback()

    message = OrmQ.objects.get()
    assert message.key == "gpu"
    payload = message.task
    assert payload["func"] == "tasks_app.jobs.run_upscale"
    assert payload["args"] == (str(Task.objects.get().pk),)


def test_upload_defaults_come_from_settings(user_client, clip, settings):
    settings.FLASHVSR_DEFAULT_CRF = 23
    settings.FLASHVSR_DEFAULT_PRESET = "fast"
    post_upload(user_client, clip)
    task = Task.objects.get()
    assert task.crf == 23
    assert task.preset == "fast"
    assert task.sparse_ratio == 2.0
    assert task.color_fix == "adain"


def test_upload_rejects_empty_file(user_client, tmp_path, media_root):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    before = files_under(media_root)
    response = post_upload(user_client, empty)
    assert_rejected(response, media_root, before, "The file is empty")


def test_upload_rejects_file_that_is_not_video(user_client, tmp_path, media_root):
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"this is a text file, not a video\n" * 200)
    before = files_under(media_root)
    response = post_upload(user_client, text)
    assert_rejected(response, media_root, before)
    assert "video" in response.content.decode().lower()


def test_upload_rejects_audio_only(user_client, tmp_path, media_root):
    audio = make_audio_file(tmp_path / "song.m4a")
    before = files_under(media_root)
    response = post_upload(user_client, audio)
    assert_rejected(response, media_root, before, "no video stream")


def test_upload_stops_streaming_over_size_limit(user_client, clip, media_root, settings):
    settings.FLASHVSR_MAX_UPLOAD_BYTES = clip.stat().st_size - 100
    before = files_under(media_root)
    response = post_upload(user_client, clip)
    assert_rejected(response, media_root, before, "larger than the upload limit")


def test_upload_rejected_on_declared_length(user_client, tmp_path, media_root, settings):
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(300 * 1024))
    settings.FLASHVSR_MAX_UPLOAD_BYTES = 1024
    before = files_under(media_root)
    response = post_upload(user_client, big)
    assert_rejected(response, media_root, before, "larger than the upload limit", "1.0")


def test_upload_rejects_too_long(user_client, clip, media_root, settings):
    settings.FLASHVSR_MAX_DURATION_SECONDS = 0.2
    before = files_under(media_root)
    response = post_upload(user_client, clip)
    assert_rejected(response, media_root, before, "0.5 seconds long", "0.2 seconds")


def test_upload_rejects_too_many_source_pixels(user_client, clip, media_root, settings):
    settings.FLASHVSR_MAX_SOURCE_PIXELS = 64 * 48 - 1
    before = files_under(media_root)
    response = post_upload(user_client, clip)
    assert_rejected(response, media_root, before, "64×48", "3071 pixels per frame")


def test_upload_rejects_output_too_large_with_fitting_scale(user_client, clip, media_root, settings):
    settings.FLASHVSR_MAX_OUTPUT_PIXELS = (64 * 3) * (48 * 3)
    before = files_under(media_root)
    response = post_upload(user_client, clip, scale="4")
    assert_rejected(response, media_root, before, "256×192", "Choose 3× or less")


def test_upload_rejects_output_too_large_at_any_scale(user_client, clip, media_root, settings):
    settings.FLASHVSR_MAX_OUTPUT_PIXELS = 64 * 48
    before = files_under(media_root)
    response = post_upload(user_client, clip, scale="2")
    assert_rejected(response, media_root, before, "even the smallest scale is too large")


def test_upload_rejects_invalid_parameter(user_client, clip, media_root):
    before = files_under(media_root)
    response = post_upload(user_client, clip, crf="99")
    assert_rejected(response, media_root, before, "51")


def test_htmx_rejection_returns_form_fragment(user_client, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    response = post_upload(user_client, empty, htmx=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith("<form")
    assert "<html" not in page
    assert "The file is empty" in page


def test_htmx_upload_returns_fresh_form_and_table(user_client, clip):
    response = post_upload(user_client, clip, htmx=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="upload-form"' in page
    assert 'hx-swap-oob="true"' in page
    assert "holiday.mp4" in page
    assert Task.objects.count() == 1


def test_upload_requires_login(client, clip, media_root):
    before = files_under(media_root)
    response = post_upload(client, clip)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
    assert Task.objects.count() == 0
    assert files_under(media_root) == before


def test_web_side_never_imports_torch(clip):
    script = (
        "import sys, django;"
        "django.setup();"
        "import flashvsr_site.urls, tasks_app.views, tasks_app.forms, tasks_app.services, tasks_app.jobs;"
        "from django.test import Client;"
        f"info = tasks_app.services.probe_upload({str(clip)!r});"
        "assert info.width == 64, info;"
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "flashvsr_site.settings_test"}
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False"


def test_uploaded_task_runs_to_success(user_client, tmp_path, media_root, django_capture_on_commit_callbacks):
    from tasks_app.jobs import run_upscale

    clip = make_clip(tmp_path / "walk.mp4", frames=9, fps=10)
    with django_capture_on_commit_callbacks(execute=False):
        post_upload(user_client, clip)
    task = Task.objects.get()
    assert task.source_metadata["path"] == task.input_file.path
    assert files_under(media_root / "tmp") == []

    assert run_upscale(str(task.pk)) == Status.SUCCEEDED

    task.refresh_from_db()
    response = user_client.get(reverse("task_download", args=[task.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="walk_x2.mp4"'
    assert task.processed_frames == 9


def test_broker_failure_fails_task_with_message(
    user_client, clip, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_upload(user_client, clip)

    assert response.status_code == 302
    task = Task.objects.get()
    assert task.status == Status.FAILED
    assert "could not be put on the queue" in task.error_message
    assert task.error_detail == "ConnectionError: broker unreachable"
