"""Structured log lines (`key=value`) for stdout, with the id of the task being handled on every record.

The task id comes from, in order: an explicit `extra={"task_id": ...}` on the call, or the task context set by
`task_context()`. The request middleware sets that context for URLs with a `task_id` argument, and the
django-q2 worker signals set it while a job whose first argument is a task id runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator

_current_task_id: contextvars.ContextVar[str] = contextvars.ContextVar("flashvsr_task_id", default="")

# django-q2 job functions whose first positional argument is a tasks_app Task id.
TASK_ID_JOBS = frozenset({"tasks_app.jobs.run_upscale"})


def current_task_id() -> str:
    return _current_task_id.get()


@contextlib.contextmanager
def task_context(task_id) -> Iterator[None]:
    """Attach `task_id` to every log record emitted inside the block (in this thread or async context)."""
    token = _current_task_id.set(str(task_id))
    try:
        yield
    finally:
        _current_task_id.reset(token)


def set_task_id(task_id) -> contextvars.Token:
    return _current_task_id.set(str(task_id) if task_id else "")


def reset_task_id(token: contextvars.Token) -> None:
    _current_task_id.reset(token)


class TaskContextFilter(logging.Filter):
    """Give every record a `task_id` attribute, empty when no task is being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "task_id", ""):
            record.task_id = current_task_id()
        return True


class KeyValueFormatter(logging.Formatter):
    """Format a record as one line: `ts=... level=INFO logger=... task_id=... msg="..."`.

    Values with spaces, quotes or `=` are double-quoted with backslash escapes, and a traceback is folded into
    an `exc` field with `\\n` escapes, so every record stays one line that `grep task_id=<id>` finds whole.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = [
            ("ts", self._timestamp(record)),
            ("level", record.levelname),
            ("logger", record.name),
            ("pid", str(record.process)),
        ]
        task_id = getattr(record, "task_id", "")
        if task_id:
            fields.append(("task_id", str(task_id)))
        fields.append(("msg", record.getMessage()))
        if record.exc_info:
            fields.append(("exc", self.formatException(record.exc_info)))
        elif record.stack_info:
            fields.append(("stack", self.formatStack(record.stack_info)))
        return " ".join(f"{key}={quote_value(value)}" for key, value in fields)

    @staticmethod
    def _timestamp(record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"


def quote_value(value: str) -> str:
    """Return `value` bare when it is a simple token, otherwise double-quoted with escapes."""
    if value and not any(char in value for char in ' "=\\\n\r\t'):
        return value
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def build_logging_config(*, level: str, log_format: str) -> dict:
    """Return the LOGGING dict: one stdout handler with the key=value or the plain text format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"task_context": {"()": "flashvsr_site.logs.TaskContextFilter"}},
        "formatters": {
            "keyvalue": {"()": "flashvsr_site.logs.KeyValueFormatter"},
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(task_id)s] %(message)s"},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": log_format,
                "filters": ["task_context"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {"django": {"level": level, "propagate": True}},
    }


def on_job_start(sender, func=None, task=None, **kwargs) -> None:
    """django-q2 `pre_execute` receiver: enter the task context of a job that handles one Task."""
    task = task or {}
    task_id = ""
    if _job_name(task.get("func")) in TASK_ID_JOBS and task.get("args"):
        task_id = task["args"][0]
    _worker_tokens.append(set_task_id(task_id))


def on_job_end(sender, func=None, task=None, **kwargs) -> None:
    """django-q2 `post_execute_in_worker` receiver: leave the context entered by `on_job_start`."""
    if _worker_tokens:
        reset_task_id(_worker_tokens.pop())


# A worker process runs one job at a time, so a stack of one token per running job is enough.
_worker_tokens: list[contextvars.Token] = []


def _job_name(func) -> str:
    if isinstance(func, str):
        return func
    module = getattr(func, "__module__", "")
    name = getattr(func, "__qualname__", "")
    return f"{module}.{name}" if module and name else ""
