"""Worker heartbeats: the row each worker process keeps fresh, and the thread that refreshes it."""

from __future__ import annotations

import os
import time

import pytest
from django.db import OperationalError
from django_q.signals import post_spawn

from tasks_app import heartbeat
from tasks_app.models import Status, WorkerHeartbeat


@pytest.mark.django_db
def test_beat_creates_then_refreshes_one_row(clip_task, monkeypatch):
    monkeypatch.setenv("Q_CLUSTER_NAME", "gpu")
    task = clip_task(status=Status.RUNNING)

    heartbeat.beat(current_task_id=task.pk)
    first = WorkerHeartbeat.objects.get()
    heartbeat.beat()
    second = WorkerHeartbeat.objects.get()
    heartbeat.beat(current_task_id=None)
    idle = WorkerHeartbeat.objects.get()

    assert first.worker_id == f"{first.host}:{os.getpid()}"
    assert first.cluster == "gpu"
    assert first.current_task_id == task.pk
    assert second.current_task_id == task.pk
    assert second.seen_at > first.seen_at
    assert idle.current_task_id is None
    assert first.gpu_name == ""


@pytest.mark.django_db(transaction=True)
def test_thread_beats_while_idle():
    stop = heartbeat.start_heartbeat_thread(interval_s=0.1)
    try:
        assert stop is not None
        assert heartbeat.start_heartbeat_thread(interval_s=0.1) is None
        deadline = time.monotonic() + 10
        seen = set()
        while len(seen) < 3 and time.monotonic() < deadline:
            seen.update(WorkerHeartbeat.objects.values_list("seen_at", flat=True))
            time.sleep(0.05)
    finally:
        stop.set()
        time.sleep(0.3)
    assert len(seen) >= 3
    assert WorkerHeartbeat.objects.get().current_task is None


@pytest.mark.django_db(transaction=True)
def test_worker_spawn_signal_starts_the_thread(monkeypatch):
    started = []
    monkeypatch.setattr(heartbeat, "start_heartbeat_thread", lambda: started.append(os.getpid()))

    post_spawn.send(sender="django_q", proc_name="Process-1:1")

    assert started == [os.getpid()]


def test_thread_survives_database_errors(monkeypatch, caplog):
    calls = []

    def flaky_beat():
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(heartbeat, "beat", flaky_beat)
    stop = heartbeat.start_heartbeat_thread(interval_s=0.01)
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        time.sleep(0.1)

    assert len(calls) >= 5
    assert "failed (1 in a row): server closed the connection unexpectedly" in caplog.text
    assert "written again after 2 failed attempts" in caplog.text
