"""The status panel: worker heartbeats, queue depth, the user's task counts, free disk, model assets.

Each section that cannot be read renders "unavailable" with the reason in a tooltip, and the rest still shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks_app import status
from tasks_app.models import Status, WorkerHeartbeat

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]


def panel(client) -> str:
    response = client.get(reverse("status_panel"))
    assert response.status_code == 200
    return response.content.decode()


def unavailable_reasons(body: str) -> list[str]:
    marker = 'class="unavailable" title="'
    return [part.split('"', 1)[0] for part in body.split(marker)[1:]]


@pytest.fixture
def no_asset_module(monkeypatch):
    monkeypatch.setattr(status, "ASSETS_MODULE", "gpu.no_such_assets_module")


@pytest.fixture
def fake_assets(monkeypatch):
    """Install a stand-in gpu assets module whose report() returns what the test sets."""
    module = types.ModuleType("tests_fake_assets")
    module.report = lambda model_dir: {}
    monkeypatch.setitem(sys.modules, "tests_fake_assets", module)
    monkeypatch.setattr(status, "ASSETS_MODULE", "tests_fake_assets")
    return module


def test_panel_shows_worker_gpu_and_age(user_client, clip_task, no_asset_module):
    task = clip_task(status=Status.RUNNING)
    WorkerHeartbeat.objects.create(
        worker_id="gpu-box:4242",
        host="gpu-box",
        pid=4242,
        cluster="gpu",
        gpu_name="NVIDIA H200",
        gpu_memory_used=20 * 1024**3,
        gpu_memory_total=141 * 1024**3,
        current_task=task,
        seen_at=timezone.now() - timedelta(seconds=3),
    )

    body = panel(user_client)

    assert "gpu-box:4242" in body
    assert "NVIDIA H200" in body
    assert "20.0\xa0GB of 141.0\xa0GB GPU memory in use" in body
    assert "alive, seen 3 s ago" in body
    assert "busy" in body


def test_stale_worker_is_marked(user_client, no_asset_module, settings):
    settings.FLASHVSR_HEARTBEAT_STALE_SECONDS = 60
    WorkerHeartbeat.objects.create(
        worker_id="gpu-box:1",
        host="gpu-box",
        pid=1,
        cluster="gpu",
        seen_at=timezone.now() - timedelta(minutes=5),
    )

    body = panel(user_client)

    assert "worker-stale" in body
    assert "not seen for 5:00" in body


def test_no_worker_says_how_to_start_one(user_client, no_asset_module):
    assert "No worker has reported yet. Start the GPU worker" in panel(user_client)


def test_queue_depth_counts_waiting_gpu_messages(user_client, no_asset_module, settings):
    from django_q.brokers import get_broker

    broker = get_broker(settings.Q_GPU_CLUSTER)
    broker.enqueue("payload-1")
    broker.enqueue("payload-2")
    get_broker(settings.Q_MAINTENANCE_CLUSTER).enqueue("not for the gpu")

    assert "2 jobs waiting for the GPU, from all users" in panel(user_client)


def test_task_counts_are_the_users_own(user_client, clip_task, other_user, no_asset_module):
    clip_task(status=Status.SUCCEEDED)
    clip_task(status=Status.SUCCEEDED)
    clip_task(status=Status.FAILED)
    clip_task(status=Status.SUCCEEDED, owner=other_user)

    queued = clip_task(status=Status.QUEUED)

    counts = status.read_task_counts(queued.owner)

    assert counts == {
        "queued": 1,
        "running": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
        "interrupted": 0,
    }
    assert "Succeeded: 2" in panel(user_client)


def test_free_disk_of_media_volume(user_client, no_asset_module):
    assert " free of " in panel(user_client)


def test_unreadable_disk_is_unavailable_with_reason(user_client, no_asset_module, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "not-mounted"

    body = panel(user_client)

    assert any(reason.startswith("FileNotFoundError") for reason in unavailable_reasons(body))
    assert "Succeeded: 0" in body


def test_broken_broker_is_unavailable_with_reason(user_client, no_asset_module, monkeypatch):
    def broken_broker(list_key=None):
        raise ConnectionError("Redis at 127.0.0.1:6379 refused the connection")

    monkeypatch.setattr("django_q.brokers.get_broker", broken_broker)

    body = panel(user_client)

    assert "ConnectionError: Redis at 127.0.0.1:6379 refused the connection" in unavailable_reasons(body)
    assert " free of " in body


def test_broken_heartbeat_query_is_unavailable(user_client, no_asset_module, monkeypatch):
    def broken(now):
        raise RuntimeError("heartbeat table missing")

    monkeypatch.setattr(status, "read_workers", broken)

    body = panel(user_client)

    assert "RuntimeError: heartbeat table missing" in unavailable_reasons(body)


def test_broken_task_counts_are_unavailable(user_client, no_asset_module, monkeypatch):
    def broken(user):
        raise RuntimeError("statement timeout")

    monkeypatch.setattr(status, "read_task_counts", broken)

    body = panel(user_client)

    assert "RuntimeError: statement timeout" in unavailable_reasons(body)
    assert "No worker has reported yet" in body


def test_missing_asset_module_is_unavailable(user_client, no_asset_module):
    reasons = unavailable_reasons(panel(user_client))

    assert "The model asset report is not installed on this server." in reasons


def test_asset_report_per_variant(user_client, fake_assets):
    fake_assets.report = lambda model_dir: {
        "tiny_long": {"ready": True, "summary": "all 4 files present"},
        "full": {"ready": False, "summary": "missing Wan2.1_VAE.pth"},
    }

    body = panel(user_client)

    assert "tiny_long: all 4 files present" in body
    assert "full: missing Wan2.1_VAE.pth" in body
    assert "asset-missing" in body


def test_failing_asset_report_is_unavailable(user_client, fake_assets):
    def broken(model_dir):
        raise PermissionError(13, "Permission denied", model_dir)

    fake_assets.report = broken

    reasons = unavailable_reasons(panel(user_client))

    assert any(reason.startswith("PermissionError") for reason in reasons)


def test_home_page_includes_polling_panel(user_client, no_asset_module):
    body = user_client.get(reverse("home")).content.decode()

    assert 'id="status-panel"' in body
    assert 'hx-trigger="every 30s, task-created from:body, task-status-changed from:body"' in body


def test_panel_needs_login(client):
    response = client.get(reverse("status_panel"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_upload_response_triggers_panel_refresh(user_client, tmp_path, monkeypatch):
    from tasks_app import services
    from tests.video.clips import make_clip

    monkeypatch.setattr(services, "enqueue_upscale", lambda task: None)
    clip = make_clip(tmp_path / "upload.mp4", frames=5, fps=10)
    with clip.open("rb") as video:
        response = user_client.post(
            reverse("task_create"),
            {"video": video, "variant": "lanczos", "scale": 2},
            headers={"HX-Request": "true"},
        )

    assert response.status_code == 200
    assert response["HX-Trigger"] == "task-created"


def test_rendering_the_panel_imports_no_torch(tmp_path):
    script = """
import sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.test import Client
client = Client()
client.force_login(get_user_model().objects.create_user("carol", password="carol-password-1"))
assert client.get("/status/").status_code == 200
assert client.get("/").status_code == 200
print("torch imported:", "torch" in sys.modules)
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashvsr_site.settings_test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'panel.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch imported: False" in result.stdout
