"""Fixtures for the operations tests: staff persona, tasks with real clips, media-folder listings."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from gpu.video.probe import probe
from tests.video.clips import make_clip


@pytest.fixture
def staff_client(client, django_user_model):
    """A logged-in superuser, the operator persona of the admin tests."""
    operator = django_user_model.objects.create_superuser(username="olga", password="olga-password-1")
    client.force_login(operator)
    return client


@pytest.fixture
def clip_task(make_task, tmp_path):
    """Create a queued lanczos task at scale 2 whose input is a real clip (6 frames of 64x48 by default)."""

    def make(frames: int = 6, width: int = 64, height: int = 48, **fields):
        clip = make_clip(
            tmp_path / f"source-{frames}.mp4", frames=frames, size=(width, height), fps=10, pattern="gradient"
        )
        fields.setdefault("original_filename", "source.mp4")
        fields.setdefault("variant", "lanczos")
        fields.setdefault("scale", 2)
        fields.setdefault("preset", "ultrafast")
        fields.setdefault("source_metadata", probe(clip).to_dict())
        return make_task(input_bytes=clip.read_bytes(), **fields)

    return make


def media_files(media_root: Path) -> list[str]:
    """Every file under the media root, as sorted paths relative to it (the folders themselves excluded)."""
    return sorted(p.relative_to(media_root).as_posix() for p in media_root.rglob("*") if p.is_file())


def write_media_file(media_root: Path, name: str, data: bytes = b"x" * 100) -> Path:
    path = media_root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def add_outputs(task, media_root: Path) -> None:
    """Give a task a result and a preview on disk, as a succeeded run leaves them."""
    task.result_file.save("ignored", ContentFile(b"r" * 300), save=False)
    task.preview_file.save("ignored", ContentFile(b"p" * 50), save=False)
    task.result_size = 300
    task.save()
