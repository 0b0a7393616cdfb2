"""Cancelling tasks: queued ones at once, running ones through the worker's cancel check."""

from __future__ import annotations

import functools

import pytest
from django.urls import reverse

from tasks_app import jobs
from tasks_app.models import Status, Task
from tasks_app.operations import OperationRejected, cancel_task

from .conftest import media_files

pytestmark = pytest.mark.django_db


def test_queued_task_is_cancelled_at_once(user_client, clip_task):
    task = clip_task()

    response = user_client.post(reverse("task_cancel", args=[task.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("task_detail", args=[task.pk])
    task.refresh_from_db()
    assert task.status == Status.CANCELLED
    assert task.cancel_requested
    assert task.finished_at is not None


def test_cancelled_queued_task_is_never_claimed(clip_task, media_root):
    task = clip_task()
    cancel_task(task)

    assert jobs.run_upscale(str(task.pk)) == "skipped"

    task.refresh_from_db()
    assert task.status == Status.CANCELLED
    assert task.started_at is None
    assert not [name for name in media_files(media_root) if name.startswith("results/")]


def test_claim_refuses_a_cancel_requested_queued_row(clip_task):
    task = clip_task()
    Task.objects.filter(pk=task.pk).update(cancel_requested=True)

    assert jobs.claim_task(str(task.pk), "host:1") is False
    task.refresh_from_db()
    assert task.status == Status.QUEUED


def test_running_task_gets_cancel_requested(user_client, clip_task):
    task = clip_task(status=Status.RUNNING, worker_id="gpu-host:42")

    response = user_client.post(reverse("task_cancel", args=[task.pk]), follow=True)

    task.refresh_from_db()
    assert task.status == Status.RUNNING
    assert task.cancel_requested
    assert "the worker stops this task" in response.content.decode()


def test_running_task_stops_without_partial_output(clip_task, media_root, monkeypatch):
    task = clip_task(frames=48)
    monkeypatch.setattr(jobs, "CancelCheck", functools.partial(jobs.CancelCheck, interval_s=0.0))
    reports = []

    class CancelOnFirstReport(jobs.ProgressRecorder):
        def __call__(self, progress):
            super().__call__(progress)
            reports.append(progress.processed_frames)
            if len(reports) == 1:
                cancel_task(Task.objects.get(pk=self.task_id))

    monkeypatch.setattr(jobs, "ProgressRecorder", CancelOnFirstReport)

    outcome = jobs.run_upscale(str(task.pk))

    task.refresh_from_db()
    assert outcome == Status.CANCELLED
    assert task.status == Status.CANCELLED
    assert task.processed_frames < 48
    assert task.result_file.name == ""
    assert media_files(media_root) == [task.input_file.name]


def test_finished_task_cannot_be_cancelled(user_client, clip_task):
    task = clip_task(status=Status.SUCCEEDED)

    with pytest.raises(OperationRejected, match="already succeeded"):
        cancel_task(task)
    response = user_client.post(reverse("task_cancel", args=[task.pk]), follow=True)

    assert "already succeeded, so there is nothing to cancel" in response.content.decode()
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED


def test_cancel_from_htmx_table_returns_the_table(user_client, clip_task):
    task = clip_task()

    response = user_client.post(
        reverse("task_cancel", args=[task.pk]), headers={"HX-Request": "true", "HX-Target": "task-table"}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="task-table"' in body
    assert 'id="messages"' in body
    assert 'hx-swap-oob="true"' in body
    assert "The task was cancelled." in body


def test_cancel_from_htmx_detail_returns_the_progress_section(user_client, clip_task):
    task = clip_task()

    response = user_client.post(
        reverse("task_cancel", args=[task.pk]), headers={"HX-Request": "true", "HX-Target": "task-progress"}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="task-progress"' in body
    assert "Cancelled" in body
    assert 'hx-trigger="every 2s"' not in body


def test_other_users_cannot_cancel(client, other_user, clip_task):
    task = clip_task()
    client.force_login(other_user)

    response = client.post(reverse("task_cancel", args=[task.pk]))

    assert response.status_code == 404
    task.refresh_from_db()
    assert task.status == Status.QUEUED


def test_cancel_requires_post(user_client, clip_task):
    task = clip_task()

    response = user_client.get(reverse("task_cancel", args=[task.pk]))

    assert response.status_code == 405
