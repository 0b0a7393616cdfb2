"""Worker heartbeats: each queue worker process keeps one WorkerHeartbeat row up to date.

The web process reads these rows for the status panel, so it never needs GPU access itself. A daemon thread
refreshes the row every FLASHVSR_HEARTBEAT_SECONDS. It starts on django-q2's `post_spawn` signal, which the
worker process sends once after it has forked and before it takes its first task, so an idle worker beats
too. The job calls `beat` itself when a task starts and ends, so `current_task` changes without waiting for
the thread. reconcile_tasks treats a running task whose worker stopped beating as interrupted.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection
from django.utils import timezone

from .models import Task, WorkerHeartbeat

logger = logging.getLogger(__name__)

_NO_CHANGE = object()
_state_lock = threading.Lock()
_current_task_id = None
_thread_pid: int | None = None


def current_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(*, current_task_id=_NO_CHANGE) -> None:
    """Create or refresh this process's heartbeat row, with GPU facts when torch already uses CUDA.

    `current_task_id` sets the task this process works on (None when idle); without it the last value stays.
    """
    global _current_task_id
    with _state_lock:
        if current_task_id is not _NO_CHANGE:
            _current_task_id = current_task_id
        task_id = _current_task_id
    if task_id is not None and not Task.objects.filter(pk=task_id).exists():
        task_id = None  # deleted meanwhile (for example with its owner); the foreign key would reject it
    fields = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cluster": os.environ.get("Q_CLUSTER_NAME", ""),
        "current_task_id": task_id,
        "seen_at": timezone.now(),
        **_gpu_facts(),
    }
    worker_id = current_worker_id()
    if WorkerHeartbeat.objects.filter(worker_id=worker_id).update(**fields):
        return
    try:
        WorkerHeartbeat.objects.create(worker_id=worker_id, **fields)
    except IntegrityError:
        # The job and the heartbeat thread both created the row at the same moment; the other one won.
        WorkerHeartbeat.objects.filter(worker_id=worker_id).update(**fields)


def start_heartbeat_thread(interval_s: float | None = None) -> threading.Event | None:
    """Start the daemon thread beating every `interval_s` seconds, once per process.

    Returns the event that stops the thread (a worker never sets it: the thread ends with the process), or
    None when this process already has a heartbeat thread.
    """
    global _thread_pid
    with _state_lock:
        if _thread_pid == os.getpid():
            return None
        _thread_pid = os.getpid()
    interval = interval_s if interval_s is not None else settings.FLASHVSR_HEARTBEAT_SECONDS
    stop = threading.Event()
    thread = threading.Thread(target=_beat_until, args=(interval, stop), name="worker-heartbeat", daemon=True)
    thread.start()
    logger.info("Heartbeat thread started for worker %s, every %.1f s", current_worker_id(), interval)
    return stop


def on_worker_spawn(sender, proc_name=None, **kwargs) -> None:
    """django-q2 `post_spawn` receiver: runs in each freshly forked worker process."""
    start_heartbeat_thread()


def _beat_until(interval_s: float, stop: threading.Event) -> None:
    global _thread_pid
    worker_id = current_worker_id()
    failures = 0
    while not stop.is_set():
        try:
            beat()
            if failures:
                logger.info("Heartbeat of %s written again after %d failed attempts", worker_id, failures)
            failures = 0
        except Exception as error:
            # Whatever fails (usually the database), the thread keeps trying. A worker that stops beating
            # looks dead, and reconcile_tasks interrupts its task once the task's progress reports stop too.
            failures += 1
            # Log the first failure and then every 60th, so a database outage does not flood the log.
            if failures == 1 or failures % 60 == 0:
                logger.warning("Heartbeat of %s failed (%d in a row): %s", worker_id, failures, error)
            if isinstance(error, DatabaseError):
                connection.close()  # this thread's connection; the next beat opens a fresh one
        stop.wait(interval_s)
    connection.close()
    with _state_lock:
        _thread_pid = None


def _gpu_facts() -> dict:
    """GPU name and memory, read only when torch is already imported and CUDA is initialised in this process.

    Reading them must not be the thing that initialises CUDA, or the lanczos baseline would start a CUDA
    context it does not need.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {}
    try:
        free, total = torch.cuda.mem_get_info()
        return {
            "gpu_name": torch.cuda.get_device_name(),
            "gpu_memory_used": total - free,
            "gpu_memory_total": total,
        }
    except RuntimeError as error:
        logger.warning("Reading GPU facts for the heartbeat failed: %s", error)
        return {}
