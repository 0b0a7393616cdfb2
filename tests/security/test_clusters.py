"""Beyond one machine: a GPU cluster fed through Redis, and two worker processes racing for one task."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import av
import pytest
from django_q.models import OrmQ

from gpu.video.probe import probe
from tasks_app.models import Status, Task
from tasks_app.services import enqueue_upscale
from tests.video.clips import make_clip

from .conftest import PYTHON, REPO_ROOT, subprocess_environment

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_TEST_URL = os.environ.get("FLASHVSR_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
GPU_QUEUE_KEY = "django_q:gpu:q"

RACE_SCRIPT = """
import os, sys, time
import django
django.setup()
from tasks_app import jobs
import gpu.api  # import torch before the start signal, so both processes start the claim together
print("READY", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.002)
print("OUTCOME", jobs.run_upscale(sys.argv[1]), flush=True)
"""


@pytest.fixture
def queued_clip_task(make_task, tmp_path):
    clip = make_clip(tmp_path / "source.mp4", frames=6, fps=10)
    return make_task(
        input_bytes=clip.read_bytes(),
        original_filename="source.mp4",
        variant="lanczos",
        scale=2,
        status=Status.QUEUED,
        source_metadata=probe(clip).to_dict(),
    )


@pytest.fixture
def redis_connection():
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_TEST_URL}: {error}")
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def decoded_frames(path: str) -> list:
    with av.open(path) as container:
        return list(container.decode(container.streams.video[0]))


def wait_for_status(task: Task, statuses: set[str], timeout_s: float) -> Task:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if task.status in statuses:
            return task
        time.sleep(0.5)
    raise AssertionError(f"task {task.pk} still {task.status} after {timeout_s} s")


def stop_process(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    output, _ = process.communicate()
    return output


def test_redis_broker_runs_task_on_gpu_cluster(queued_clip_task, redis_connection, media_root):
    environment = subprocess_environment(
        media_root, Q_BROKER="redis", REDIS_URL=REDIS_TEST_URL, FLASHVSR_HEARTBEAT_SECONDS="1"
    )
    enqueue = (
        "from tasks_app.models import Task; from tasks_app.services import enqueue_upscale; "
        f"enqueue_upscale(Task.objects.get(pk='{queued_clip_task.pk}'))"
    )
    enqueued = subprocess.run(
        [PYTHON, "manage.py", "shell", "--no-imports", "-c", enqueue],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert enqueued.returncode == 0, enqueued.stderr
    assert redis_connection.llen(GPU_QUEUE_KEY) == 1
    assert OrmQ.objects.count() == 0

    cluster = subprocess.Popen(
        [PYTHON, "manage.py", "qcluster"],
        cwd=REPO_ROOT,
        env={**environment, "Q_CLUSTER_NAME": "gpu"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        task = wait_for_status(queued_clip_task, {Status.SUCCEEDED, Status.FAILED}, timeout_s=180)
    finally:
        cluster_log = stop_process(cluster)

    assert task.status == Status.SUCCEEDED, f"{task.error_detail}\n{cluster_log}"
    assert redis_connection.llen(GPU_QUEUE_KEY) == 0
    frames = decoded_frames(task.result_file.path)
    assert len(frames) == 6
    assert (frames[0].width, frames[0].height) == (128, 96)
    assert f"task_id={task.pk}" in cluster_log


def test_two_worker_processes_claim_once(queued_clip_task, media_root, tmp_path):
    environment = subprocess_environment(media_root)
    go_file = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [PYTHON, "-c", RACE_SCRIPT, str(queued_clip_task.pk), str(go_file)],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "READY", worker.stderr.read()
        go_file.touch()
        results = [worker.communicate(timeout=180) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

    outcomes = sorted(
        line.split()[1]
        for output, _ in results
        for line in output.splitlines()
        if line.startswith("OUTCOME ")
    )
    assert outcomes == ["skipped", "succeeded"], results
    task = Task.objects.get(pk=queued_clip_task.pk)
    winner = next(
        worker for worker, (output, _) in zip(workers, results, strict=True) if Status.SUCCEEDED in output
    )
    assert task.status == Status.SUCCEEDED
    assert task.worker_id.endswith(f":{winner.pid}")
    assert len(decoded_frames(task.result_file.path)) == 6
    assert sorted(path.name for path in Path(media_root, "results").iterdir()) == [f"{task.pk}.mp4"]


def test_stop_signal_ends_running_job_cleanly(make_task, tmp_path, media_root):
    clip = make_clip(tmp_path / "long.mp4", frames=1200, size=(320, 240), fps=25, pattern="gradient")
    task = make_task(
        input_bytes=clip.read_bytes(),
        original_filename="long.mp4",
        variant="lanczos",
        scale=2,
        status=Status.QUEUED,
        source_metadata=probe(clip).to_dict(),
    )
    enqueue_upscale(task)
    environment = subprocess_environment(media_root, Q_CLUSTER_NAME="gpu")
    # A session of its own, so the signal reaches every process of the cluster, as systemd's
    # KillMode=control-group does with the KillSignal=SIGINT of deploy/systemd/flashvsr-gpu@.service.
    cluster = subprocess.Popen(
        [PYTHON, "manage.py", "qcluster"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            task.refresh_from_db()
            if task.status == Status.RUNNING and task.processed_frames > 0:
                break
            time.sleep(0.2)
        assert task.status == Status.RUNNING, task.status
        assert task.processed_frames > 0

        os.killpg(cluster.pid, signal.SIGINT)
        started = time.monotonic()
        cluster_log, _ = cluster.communicate(timeout=60)
        stop_seconds = time.monotonic() - started
    finally:
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.communicate()

    task.refresh_from_db()
    assert task.status == Status.INTERRUPTED, f"status {task.status}\n{cluster_log}"
    assert task.error_message == "The worker stopped while processing this video. Retry it."
    assert "WorkerShutdown" in task.error_detail
    assert 0 < task.processed_frames < 1200
    assert stop_seconds < 30, cluster_log
    assert "received SIGINT" in cluster_log
    assert "has stopped" in cluster_log
    results = media_root / "results"
    assert not results.exists() or list(results.iterdir()) == []
