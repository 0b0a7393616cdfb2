"""Result downloads: byte ranges served by Django, or handed to nginx with X-Accel-Redirect."""

from __future__ import annotations

import subprocess

import pytest
from django.urls import reverse

from .conftest import PYTHON, REPO_ROOT, RESULT_BYTES

pytestmark = pytest.mark.django_db


def download_url(task) -> str:
    return reverse("task_download", args=[task.pk])


def test_range_served_by_django(user_client, finished_task, settings):
    settings.FLASHVSR_X_ACCEL_REDIRECT_PREFIX = ""

    response = user_client.get(download_url(finished_task), headers={"Range": "bytes=100-199"})

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(RESULT_BYTES)}"
    assert b"".join(response.streaming_content) == RESULT_BYTES[100:200]
    assert "X-Accel-Redirect" not in response


def test_x_accel_redirect_hands_file_to_proxy(user_client, finished_task, settings):
    settings.FLASHVSR_X_ACCEL_REDIRECT_PREFIX = "/protected-media/"

    response = user_client.get(download_url(finished_task), headers={"Range": "bytes=100-199"})

    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/results/{finished_task.pk}.mp4"
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Disposition"] == 'attachment; filename="holiday_x2.mp4"'
    assert response.content == b""


def test_x_accel_inline_for_video_element(user_client, finished_task, settings):
    settings.FLASHVSR_X_ACCEL_REDIRECT_PREFIX = "/protected-media/"

    response = user_client.get(download_url(finished_task) + "?inline=1")

    assert response["Content-Disposition"] == 'inline; filename="holiday_x2.mp4"'


def test_x_accel_not_sent_to_stranger(client, other_user, finished_task, settings):
    settings.FLASHVSR_X_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    client.force_login(other_user)

    response = client.get(download_url(finished_task))

    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


def test_x_accel_missing_file_is_404(user_client, finished_task, settings):
    settings.FLASHVSR_X_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    finished_task.result_file.storage.delete(finished_task.result_file.name)

    response = user_client.get(download_url(finished_task))

    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


@pytest.mark.parametrize("prefix", ["protected-media/", "/protected-media"])
def test_x_accel_prefix_must_be_slash_wrapped(prefix):
    completed = subprocess.run(
        [PYTHON, "-c", "import flashvsr_site.settings"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 60, "FLASHVSR_X_ACCEL_REDIRECT_PREFIX": prefix},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode != 0
    assert "FLASHVSR_X_ACCEL_REDIRECT_PREFIX" in completed.stderr
    assert "must start and end with '/'" in completed.stderr
