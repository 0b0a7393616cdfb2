"""Task and heartbeat admin: list, filters, search, file-aware actions, read-only worker fields."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks_app import services
from tasks_app.models import Status, Task, WorkerHeartbeat

from .conftest import add_outputs, media_files

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tasks_app_task_changelist"


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services, "enqueue_upscale", lambda task: None)


def run_action(client, action: str, tasks, **extra):
    data = {"action": action, "_selected_action": [str(task.pk) for task in tasks], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_changelist_lists_filters_and_searches(staff_client, clip_task):
    clip_task(status=Status.SUCCEEDED, original_filename="holiday.mp4")
    clip_task(status=Status.FAILED, original_filename="wedding.mp4")

    listing = staff_client.get(reverse(CHANGELIST)).content.decode()
    filtered = staff_client.get(reverse(CHANGELIST), {"status__exact": "failed"}).content.decode()
    searched = staff_client.get(reverse(CHANGELIST), {"q": "holiday"}).content.decode()

    assert "holiday.mp4" in listing
    assert "wedding.mp4" in listing
    assert "wedding.mp4" in filtered
    assert "holiday.mp4" not in filtered
    assert "holiday.mp4" in searched
    assert "wedding.mp4" not in searched


def test_regular_users_cannot_open_the_admin(user_client):
    response = user_client.get(reverse(CHANGELIST))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_cancel_action(staff_client, clip_task):
    queued = clip_task()
    running = clip_task(status=Status.RUNNING)
    done = clip_task(status=Status.SUCCEEDED)

    response = run_action(staff_client, "cancel_selected", [queued, running, done])

    assert Task.objects.get(pk=queued.pk).status == Status.CANCELLED
    assert Task.objects.get(pk=running.pk).cancel_requested
    assert Task.objects.get(pk=done.pk).status == Status.SUCCEEDED
    body = response.content.decode()
    assert "2 tasks cancelled or asked to stop." in body
    assert "nothing to cancel" in body


def test_retry_action(staff_client, clip_task):
    failed = clip_task(status=Status.FAILED)
    succeeded = clip_task(status=Status.SUCCEEDED)

    response = run_action(staff_client, "retry_selected", [failed, succeeded])

    assert Task.objects.filter(retry_of=failed, attempt=2, status=Status.QUEUED).count() == 1
    assert not Task.objects.filter(retry_of=succeeded).exists()
    assert "1 retry queued." in response.content.decode()


def test_clean_up_action_skips_active_tasks(staff_client, clip_task, media_root):
    finished = clip_task(status=Status.SUCCEEDED)
    add_outputs(finished, media_root)
    running = clip_task(status=Status.RUNNING)

    response = run_action(staff_client, "clean_up_selected", [finished, running])

    assert list(Task.objects.values_list("pk", flat=True)) == [running.pk]
    assert media_files(media_root) == [running.input_file.name]
    body = response.content.decode()
    assert "1 tasks deleted, 3 files removed" in body
    assert "1 queued or running tasks skipped" in body


def test_bulk_delete_removes_files(staff_client, clip_task, media_root):
    task = clip_task(status=Status.FAILED)
    add_outputs(task, media_root)

    run_action(staff_client, "delete_selected", [task], post="yes")

    assert Task.objects.count() == 0
    assert media_files(media_root) == []


def test_single_delete_removes_files(staff_client, clip_task, media_root):
    task = clip_task(status=Status.CANCELLED)

    staff_client.post(reverse("admin:tasks_app_task_delete", args=[task.pk]), {"post": "yes"})

    assert Task.objects.count() == 0
    assert media_files(media_root) == []


def test_worker_owned_fields_are_read_only(staff_client, clip_task):
    task = clip_task(status=Status.RUNNING)

    page = staff_client.get(reverse("admin:tasks_app_task_change", args=[task.pk])).content.decode()

    assert 'name="status"' not in page
    assert 'name="progress"' not in page
    assert 'name="result_file"' not in page
    assert 'name="cancel_requested"' not in page
    assert 'name="crf"' in page


def test_heartbeat_admin_lists_workers(staff_client):
    WorkerHeartbeat.objects.create(
        worker_id="gpu-box:7",
        host="gpu-box",
        pid=7,
        cluster="gpu",
        gpu_name="NVIDIA L4",
        gpu_memory_used=2 * 1024**3,
        gpu_memory_total=24 * 1024**3,
        seen_at=timezone.now(),
    )

    page = staff_client.get(reverse("admin:tasks_app_workerheartbeat_changelist")).content.decode()

    assert "gpu-box:7" in page
    assert "NVIDIA L4" in page
    assert "2.0\xa0GB / 24.0\xa0GB" in page
