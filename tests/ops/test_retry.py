"""Retrying failed, cancelled and interrupted tasks as new tasks with the same input and parameters."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from django.urls import reverse

from tasks_app import jobs, services
from tasks_app.models import PARAM_FIELDS, Status, Task
from tasks_app.operations import OperationRejected, retry_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    """Record the tasks handed to the queue instead of enqueueing them."""
    calls = []
    monkeypatch.setattr(services, "enqueue_upscale", lambda task: calls.append(task.pk))
    return calls


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED, Status.INTERRUPTED])
def test_retry_creates_next_attempt(
    user_client, clip_task, enqueued, status, django_capture_on_commit_callbacks
):
    task = clip_task(status=status, crf=23, seed=7, error_message="Something broke.")

    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(reverse("task_retry", args=[task.pk]))

    retry = Task.objects.get(retry_of=task)
    assert response.status_code == 302
    assert response["Location"] == reverse("task_detail", args=[retry.pk])
    assert retry.status == Status.QUEUED
    assert retry.attempt == 2
    assert retry.input_file.name == task.input_file.name
    assert retry.error_message == ""
    assert {name: getattr(retry, name) for name in PARAM_FIELDS} == {
        name: getattr(task, name) for name in PARAM_FIELDS
    }
    assert retry.total_frames == 6
    assert enqueued == [retry.pk]


def test_retry_runs_to_success(clip_task, enqueued):
    task = clip_task(status=Status.INTERRUPTED)

    retry = retry_task(task)
    outcome = jobs.run_upscale(str(retry.pk))

    retry.refresh_from_db()
    assert outcome == Status.SUCCEEDED
    with av.open(retry.result_file.path) as result:
        frames = list(result.decode(video=0))
    assert len(frames) == 6
    assert (frames[0].width, frames[0].height) == (128, 96)
    assert Path(task.input_file.path).is_file()


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING, Status.SUCCEEDED])
def test_active_or_succeeded_task_cannot_be_retried(user_client, clip_task, enqueued, status):
    task = clip_task(status=status)

    with pytest.raises(OperationRejected, match="Only failed, cancelled or interrupted tasks can be retried"):
        retry_task(task)
    response = user_client.post(reverse("task_retry", args=[task.pk]), follow=True)

    assert "Only failed, cancelled or interrupted tasks can be retried" in response.content.decode()
    assert Task.objects.count() == 1


def test_second_retry_while_first_is_queued_is_rejected(clip_task, enqueued):
    task = clip_task(status=Status.FAILED)
    retry_task(task)

    with pytest.raises(OperationRejected, match="already queued or running"):
        retry_task(task)
    assert Task.objects.filter(retry_of=task).count() == 1


def test_retry_with_missing_input_explains_what_to_do(clip_task, enqueued):
    task = clip_task(status=Status.FAILED)
    Path(task.input_file.path).unlink()

    with pytest.raises(OperationRejected, match="no longer on the server.*Upload it again"):
        retry_task(task)
    assert Task.objects.count() == 1


def test_retry_of_a_retry_counts_attempts(clip_task, enqueued):
    first = clip_task(status=Status.FAILED)
    second = retry_task(first)
    Task.objects.filter(pk=second.pk).update(status=Status.FAILED)

    third = retry_task(second)

    assert third.attempt == 3
    assert third.retry_of == second


def test_retry_from_htmx_table_shows_the_new_row(user_client, clip_task, enqueued):
    task = clip_task(status=Status.FAILED)

    response = user_client.post(
        reverse("task_retry", args=[task.pk]), headers={"HX-Request": "true", "HX-Target": "task-table"}
    )

    retry = Task.objects.get(retry_of=task)
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="task-{retry.pk}"' in body
    assert "queued again as attempt 2" in body


def test_retry_from_htmx_detail_redirects_to_new_task(user_client, clip_task, enqueued):
    task = clip_task(status=Status.FAILED)

    response = user_client.post(
        reverse("task_retry", args=[task.pk]), headers={"HX-Request": "true", "HX-Target": "task-progress"}
    )

    retry = Task.objects.get(retry_of=task)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("task_detail", args=[retry.pk])


def test_other_users_cannot_retry(client, other_user, clip_task, enqueued):
    task = clip_task(status=Status.FAILED)
    client.force_login(other_user)

    response = client.post(reverse("task_retry", args=[task.pk]))

    assert response.status_code == 404
    assert Task.objects.count() == 1
