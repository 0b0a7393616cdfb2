"""Fixtures for the security tests: a task with a result file, and the environment for subprocesses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from tasks_app.models import Status

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_BYTES = bytes(range(256)) * 40


@pytest.fixture
def finished_task(make_task, media_root):
    """A succeeded task of alice's with a 10240-byte result file on disk."""
    task = make_task(original_filename="holiday.mp4", variant="lanczos", scale=2, status=Status.SUCCEEDED)
    task.result_file.save(f"{task.pk}.mp4", ContentFile(RESULT_BYTES), save=False)
    task.result_size = len(RESULT_BYTES)
    task.save()
    return task


def postgres_url_for_current_database() -> str:
    """Return a DATABASE_URL for the test database this process uses, so a subprocess reads the same rows."""
    settings_dict = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL (set DATABASE_URL=postgres://...): a subprocess cannot share SQLite in memory"
        )
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{password}" if password else user
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{credentials}@{host}:{port}/{settings_dict['NAME']}"


def subprocess_environment(media_root: Path, **overrides: str) -> dict[str, str]:
    """Return the environment for a subprocess that shares this test's database and media folder."""
    environment = dict(os.environ)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "flashvsr_site.settings_test",
            "DATABASE_URL": postgres_url_for_current_database(),
            "MEDIA_ROOT": str(media_root),
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update(overrides)
    return environment


PYTHON = sys.executable
