"""Fixtures shared by every test folder: users, a logged-in client, an isolated media root, task rows."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from tasks_app.models import Task


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Give each test its own MEDIA_ROOT (with the upload temp folder inside it, as in production)."""
    root = tmp_path / "media"
    (root / "tmp").mkdir(parents=True)
    settings.MEDIA_ROOT = root
    settings.FILE_UPLOAD_TEMP_DIR = str(root / "tmp")
    return root


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="alice-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="bob-password-1")


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def make_task(user):
    """Create a Task row with an input file on disk; keyword arguments override any field."""

    def make(input_bytes: bytes = b"not a real video", **fields) -> Task:
        fields.setdefault("owner", user)
        fields.setdefault("original_filename", "clip.mp4")
        fields.setdefault("input_size", len(input_bytes))
        task = Task(**fields)
        task.input_file.save("ignored-name", ContentFile(input_bytes), save=False)
        task.save()
        return task

    return make
