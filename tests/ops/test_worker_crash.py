"""Real worker tests: a GPU worker killed mid-task leaves a task that reconcile_tasks marks interrupted and
a retry of it succeeds, and a running task cancelled from the web stops within seconds.

Each test starts a real django-q2 cluster (`Q_CLUSTER_NAME=gpu manage.py qcluster`) against the test
database, so it needs PostgreSQL: an in-memory SQLite database cannot be shared with another process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import av
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from tasks_app import jobs, services
from tasks_app.models import Status, Task, WorkerHeartbeat
from tasks_app.operations import retry_task

from .conftest import media_files

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIP_FRAMES = 160
CANCEL_CLIP_FRAMES = 400
START_TIMEOUT_S = 90


def wait_for(condition, timeout_s: float, description: str, log_path: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(
        f"timed out after {timeout_s} s waiting for {description}; worker log:\n{log_path.read_text()[-4000:]}"
    )


def start_gpu_cluster(media_root: Path, log_path: Path) -> subprocess.Popen:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "DJANGO_SETTINGS_MODULE": "flashvsr_site.settings_test",
        "MEDIA_ROOT": str(media_root),
        "Q_CLUSTER_NAME": settings.Q_GPU_CLUSTER,
        "FLASHVSR_HEARTBEAT_SECONDS": "0.5",
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.django_db(transaction=True)
def test_killed_worker_leaves_interrupted_task_that_retries(clip_task, media_root, tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the worker process must share the test database")
    # 320x240 at scale 2 takes several seconds on a CPU, long enough to kill the worker mid-task.
    task = clip_task(frames=CLIP_FRAMES, width=320, height=240, preset="medium")
    log_path = tmp_path / "qcluster.log"
    cluster = start_gpu_cluster(media_root, log_path)
    try:
        services.enqueue_upscale(task)
        # The encoder creates its partial file once the first packets leave x264's lookahead.
        wait_for(
            lambda: any(name.startswith("results/") for name in media_files(media_root)),
            START_TIMEOUT_S,
            "the worker to write partial output",
            log_path,
        )
        running = Task.objects.get(pk=task.pk)
        assert running.status == Status.RUNNING
        beat = WorkerHeartbeat.objects.get(worker_id=running.worker_id)
        assert beat.cluster == "gpu"
        assert beat.current_task_id == task.pk
    finally:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=30)

    assert Task.objects.get(pk=task.pk).status == Status.RUNNING
    time.sleep(1.5)
    out = StringIO()
    call_command("reconcile_tasks", "--stale-seconds", "1", stdout=out)

    interrupted = Task.objects.get(pk=task.pk)
    assert interrupted.status == Status.INTERRUPTED
    assert interrupted.error_message == "The worker stopped while processing this video. Retry it."
    assert 0 < interrupted.processed_frames < CLIP_FRAMES
    assert media_files(media_root) == [task.input_file.name]

    monkeypatch.setattr(services, "enqueue_upscale", lambda task: None)
    retry = retry_task(interrupted)
    assert jobs.run_upscale(str(retry.pk)) == Status.SUCCEEDED

    retry.refresh_from_db()
    with av.open(retry.result_file.path) as result:
        frames = list(result.decode(video=0))
    assert len(frames) == CLIP_FRAMES
    assert retry.processed_frames == CLIP_FRAMES
    assert media_files(media_root) == sorted(
        name for name in (task.input_file.name, retry.result_file.name, retry.preview_file.name) if name
    )


@pytest.mark.django_db(transaction=True)
def test_running_task_cancelled_from_the_web_stops(user_client, clip_task, media_root, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the worker process must share the test database")
    # Long enough that the run cannot finish before the cancel arrives, even on an idle machine.
    task = clip_task(frames=CANCEL_CLIP_FRAMES, width=320, height=240, preset="medium")
    log_path = tmp_path / "qcluster.log"
    cluster = start_gpu_cluster(media_root, log_path)
    try:
        services.enqueue_upscale(task)
        wait_for(
            lambda: Task.objects.filter(pk=task.pk, status=Status.RUNNING, processed_frames__gt=0).exists(),
            START_TIMEOUT_S,
            "the worker to start the task",
            log_path,
        )
        requested_at = time.monotonic()
        response = user_client.post(reverse("task_cancel", args=[task.pk]))
        assert response.status_code == 302

        wait_for(
            lambda: Task.objects.filter(pk=task.pk).exclude(status=Status.RUNNING).exists(),
            30,
            "the worker to stop the cancelled task",
            log_path,
        )
        stopped_after_s = time.monotonic() - requested_at
        # The job stores the status first and then cleans up; it clears its heartbeat's task when done.
        worker_id = Task.objects.get(pk=task.pk).worker_id
        wait_for(
            lambda: WorkerHeartbeat.objects.filter(worker_id=worker_id, current_task__isnull=True).exists(),
            30,
            "the worker to finish cleaning up",
            log_path,
        )
    finally:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=30)

    cancelled = Task.objects.get(pk=task.pk)
    assert cancelled.status == Status.CANCELLED, log_path.read_text()[-4000:]
    assert stopped_after_s < 15
    assert cancelled.processed_frames < CANCEL_CLIP_FRAMES
    assert cancelled.result_file.name == ""
    assert media_files(media_root) == [task.input_file.name]
