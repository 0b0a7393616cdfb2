"""Stop a django-q2 worker process and its running job promptly when its cluster is stopped.

How django-q2 1.11 handles signals: the main `qcluster` process stops gracefully on SIGINT or SIGTERM,
but only after the running job has finished, which can take hours. Its sentinel, pusher and monitor processes
ignore SIGINT and die at once on SIGTERM, and a SIGTERM sent to every process (systemd's default
KillMode=control-group) can leave the main process waiting forever. Workers inherit the same actions.

So the deploy units stop the GPU cluster with SIGINT to every process, and this handler, installed in each
worker, raises WorkerShutdown on SIGINT or SIGTERM. It is a SystemExit subclass, so the job records the
task as interrupted (which the user can retry), removes the partial result and re-raises it. The worker then
exits, and the main process's graceful stop completes.

The exception is raised between two Python bytecodes, so a long native call (one model window on the GPU)
finishes first. systemd's TimeoutStopSec must cover one window and the clean-up.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

logger = logging.getLogger(__name__)


class WorkerShutdown(SystemExit):
    """Raised in a queue worker process that received SIGINT or SIGTERM."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_worker_stop_handler(sender=None, proc_name=None, **kwargs) -> None:
    """django-q2 `post_spawn` receiver: runs in the main thread of each freshly forked worker process.

    A `sync` run (tests, `Q_CLUSTER["sync"]`) sends the same signal in the calling process, which keeps its
    own signal handling.
    """
    if multiprocessing.current_process().name == "MainProcess":
        return
    if threading.current_thread() is not threading.main_thread():
        return
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, _raise_worker_shutdown)


def _raise_worker_shutdown(signum, frame) -> None:
    # Ignore further stop signals, so the clean-up in the job's `finally` block runs to its end.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    name = signal.Signals(signum).name
    logger.warning("Worker process %d received %s: stopping the running job", os.getpid(), name)
    raise WorkerShutdown(128 + signum)
