"""Deleting a task removes its files; a shared input stays while another task refers to it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tasks_app import jobs
from tasks_app.models import Status, Task
from tasks_app.operations import OperationRejected, delete_task

from .conftest import add_outputs, media_files, write_media_file

pytestmark = pytest.mark.django_db


def test_delete_removes_row_and_every_file(user_client, clip_task, media_root):
    task = clip_task(status=Status.SUCCEEDED)
    add_outputs(task, media_root)
    write_media_file(media_root, f"results/{task.pk}.mp4.partial")
    assert len(media_files(media_root)) == 4

    response = user_client.post(reverse("task_delete", args=[task.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert not Task.objects.filter(pk=task.pk).exists()
    assert media_files(media_root) == []


def test_delete_reports_files_and_bytes(clip_task, media_root):
    task = clip_task(status=Status.FAILED)
    add_outputs(task, media_root)
    input_size = (media_root / task.input_file.name).stat().st_size

    removed = delete_task(task)

    assert removed.files == 3
    assert removed.bytes == input_size + 300 + 50


def test_shared_input_stays_until_last_task_goes(clip_task, media_root, monkeypatch):
    from tasks_app import services
    from tasks_app.operations import retry_task

    monkeypatch.setattr(services, "enqueue_upscale", lambda task: None)
    original = clip_task(status=Status.FAILED)
    retry = retry_task(original)
    input_name = original.input_file.name

    delete_task(original)
    assert media_files(media_root) == [input_name]

    Task.objects.filter(pk=retry.pk).update(status=Status.FAILED)
    delete_task(retry)
    assert media_files(media_root) == []


def test_running_task_cannot_be_deleted(user_client, clip_task, media_root):
    task = clip_task(status=Status.RUNNING)

    with pytest.raises(OperationRejected, match="Cancel it and wait"):
        delete_task(task)
    response = user_client.post(reverse("task_delete", args=[task.pk]), follow=True)

    assert "Cancel it and wait until it has stopped" in response.content.decode()
    assert Task.objects.filter(pk=task.pk).exists()
    assert media_files(media_root) == [task.input_file.name]


def test_deleted_queued_task_is_skipped_by_worker(clip_task, media_root):
    task = clip_task()

    delete_task(task)

    assert jobs.run_upscale(str(task.pk)) == "skipped"
    assert media_files(media_root) == []


def test_delete_from_htmx_table_removes_the_row(user_client, clip_task):
    task = clip_task(status=Status.CANCELLED)
    kept = clip_task(status=Status.FAILED, original_filename="kept.mp4")

    response = user_client.post(
        reverse("task_delete", args=[task.pk]), headers={"HX-Request": "true", "HX-Target": "task-table"}
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="task-{task.pk}"' not in body
    assert f'id="task-{kept.pk}"' in body
    assert "and its files were deleted" in body


def test_delete_from_htmx_detail_redirects_home(user_client, clip_task):
    task = clip_task(status=Status.CANCELLED)

    response = user_client.post(
        reverse("task_delete", args=[task.pk]), headers={"HX-Request": "true", "HX-Target": "task-progress"}
    )

    assert response["HX-Redirect"] == reverse("home")


def test_other_users_cannot_delete(client, other_user, clip_task, media_root):
    task = clip_task(status=Status.SUCCEEDED)
    client.force_login(other_user)

    response = client.post(reverse("task_delete", args=[task.pk]))

    assert response.status_code == 404
    assert Task.objects.filter(pk=task.pk).exists()
    assert media_files(media_root) == [task.input_file.name]


def test_detail_page_shows_buttons_for_the_state(user_client, clip_task):
    failed = clip_task(status=Status.FAILED)
    running = clip_task(status=Status.RUNNING)

    failed_page = user_client.get(reverse("task_detail", args=[failed.pk])).content.decode()
    running_page = user_client.get(reverse("task_detail", args=[running.pk])).content.decode()

    assert reverse("task_retry", args=[failed.pk]) in failed_page
    assert reverse("task_delete", args=[failed.pk]) in failed_page
    assert reverse("task_cancel", args=[failed.pk]) not in failed_page
    assert reverse("task_cancel", args=[running.pk]) in running_page
    assert reverse("task_delete", args=[running.pk]) not in running_page
    assert reverse("task_retry", args=[running.pk]) not in running_page
