"""A full media volume during encoding fails the task with a clear message and leaves no partial result."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from gpu.video import encode
from tasks_app import jobs
from tasks_app.models import Status, Task

from .conftest import media_files

pytestmark = pytest.mark.django_db


def no_space() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_encoding_frames(clip_task, media_root, monkeypatch):
    task = clip_task(frames=30)
    real_write = encode.VideoWriter.write

    def write_until_full(self, frame, pts):
        if self.frames_written >= 10:
            assert Path(self.video_temp_path).exists()
            raise no_space()
        real_write(self, frame, pts)

    monkeypatch.setattr(encode.VideoWriter, "write", write_until_full)

    outcome = jobs.run_upscale(str(task.pk))

    task.refresh_from_db()
    assert outcome == Status.FAILED
    assert task.status == Status.FAILED
    assert "disk holding the results is full" in task.error_message
    assert "No space left on device" in task.error_detail
    assert task.result_file.name == ""
    assert media_files(media_root) == [task.input_file.name]


def test_disk_full_while_muxing_audio(clip_task, media_root, monkeypatch):
    task = clip_task(frames=12)

    def remux_until_full(video_path, source_path, info, output_path, container_format):
        Path(output_path).write_bytes(b"half a file")
        raise no_space()

    monkeypatch.setattr(encode, "remux_with_source", remux_until_full)

    outcome = jobs.run_upscale(str(task.pk))

    task.refresh_from_db()
    assert outcome == Status.FAILED
    assert "disk" in task.error_message
    assert "No space left on device" in task.error_detail
    assert media_files(media_root) == [task.input_file.name]
    assert not Task.objects.filter(status=Status.RUNNING).exists()
