"""Structured log lines on stdout that carry the id of the task a request or job is handling."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import uuid

import pytest
from django.urls import reverse
from django_q.tasks import async_task

from flashvsr_site.logs import KeyValueFormatter, TaskContextFilter, current_task_id, task_context

from .conftest import PYTHON, REPO_ROOT, subprocess_environment

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_line(line: str) -> dict[str, str]:
    fields = {}
    for key, value in FIELD.findall(line):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        fields[key] = value
    return fields


def make_record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("tasks_app.jobs", logging.WARNING, __file__, 1, message, args, exc_info)


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(TaskContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorded():
    handler = RecordingHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.records
    root.removeHandler(handler)


def test_formatter_writes_one_parseable_line():
    record = make_record('file "%s" failed\nsecond line', "a b.mp4")
    record.task_id = "1234"

    line = KeyValueFormatter().format(record)
    fields = parse_line(line)

    assert "\n" not in line
    assert fields["level"] == "WARNING"
    assert fields["logger"] == "tasks_app.jobs"
    assert fields["task_id"] == "1234"
    assert fields["msg"] == 'file "a b.mp4" failed\nsecond line'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["ts"])


def test_formatter_folds_traceback_into_field():
    try:
        raise ValueError("broken frame")
    except ValueError:
        record = make_record("decode failed", exc_info=sys.exc_info())

    line = KeyValueFormatter().format(record)
    fields = parse_line(line)

    assert "\n" not in line
    assert "task_id" not in fields
    assert fields["exc"].startswith("Traceback (most recent call last):")
    assert "ValueError: broken frame" in fields["exc"]


def test_task_context_is_scoped():
    with task_context("abc"):
        assert current_task_id() == "abc"
        with task_context("def"):
            assert current_task_id() == "def"
        assert current_task_id() == "abc"
    assert current_task_id() == ""


@pytest.mark.django_db
def test_request_log_carries_task_id(user_client, finished_task, recorded):
    finished_task.result_file.storage.delete(finished_task.result_file.name)

    response = user_client.get(reverse("task_download", args=[finished_task.pk]))

    assert response.status_code == 404
    missing = [record for record in recorded if "file is missing" in record.getMessage()]
    assert len(missing) == 1
    assert missing[0].task_id == str(finished_task.pk)
    assert current_task_id() == ""


@pytest.mark.django_db
def test_worker_job_log_carries_task_id(recorded, monkeypatch):
    # A sync run calls django-q2's worker loop in this process. Keep it from starting the heartbeat thread,
    # because that thread would keep a database connection open past the test.
    monkeypatch.setattr("tasks_app.heartbeat.start_heartbeat_thread", lambda *args, **kwargs: None)
    task_id = str(uuid.uuid4())

    async_task("tasks_app.jobs.run_upscale", task_id, sync=True)
    logging.getLogger("tasks_app.jobs").info("after the job")

    skipped = [record for record in recorded if "was not claimed" in record.getMessage()]
    after = [record for record in recorded if record.getMessage() == "after the job"]
    assert len(skipped) == 1
    assert skipped[0].task_id == task_id
    assert after[0].task_id == ""


@pytest.mark.django_db(transaction=True)
def test_stdout_lines_in_process(media_root):
    task_id = str(uuid.uuid4())
    script = (
        "from django_q.tasks import async_task; "
        f"async_task('tasks_app.jobs.run_upscale', '{task_id}', sync=True)"
    )
    environment = subprocess_environment(media_root, LOG_FORMAT="keyvalue", LOG_LEVEL="INFO")

    completed = subprocess.run(
        [PYTHON, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    lines = [parse_line(line) for line in completed.stdout.splitlines() if line.startswith("ts=")]
    job_lines = [fields for fields in lines if fields.get("logger") == "tasks_app.jobs"]
    assert job_lines, completed.stdout
    assert job_lines[0]["task_id"] == task_id
    assert job_lines[0]["level"] == "WARNING"
