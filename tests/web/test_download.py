import os

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from tasks_app.downloads import parse_range
from tasks_app.models import Status

pytestmark = pytest.mark.django_db

RESULT = os.urandom(10_000)


@pytest.fixture
def finished_task(make_task):
    task = make_task(original_filename="Beach day.mov", scale=4, status=Status.SUCCEEDED)
    task.result_file.save("ignored", ContentFile(RESULT), save=False)
    task.result_size = len(RESULT)
    task.save()
    return task


def download(client, task, **headers):
    return client.get(reverse("task_download", args=[task.pk]), headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_download_whole_file(user_client, finished_task):
    response = download(user_client, finished_task)
    assert response.status_code == 200
    assert body(response) == RESULT
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(RESULT))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == 'attachment; filename="Beach day_x4.mp4"'


def test_download_range_returns_exact_bytes(user_client, finished_task):
    response = download(user_client, finished_task, Range="bytes=100-1099")
    assert response.status_code == 206
    assert body(response) == RESULT[100:1100]
    assert response["Content-Range"] == f"bytes 100-1099/{len(RESULT)}"
    assert response["Content-Length"] == "1000"


def test_download_open_and_suffix_ranges(user_client, finished_task):
    tail = download(user_client, finished_task, Range="bytes=9990-")
    assert tail.status_code == 206
    assert body(tail) == RESULT[9990:]
    suffix = download(user_client, finished_task, Range="bytes=-10")
    assert suffix.status_code == 206
    assert body(suffix) == RESULT[-10:]
    assert suffix["Content-Range"] == f"bytes 9990-9999/{len(RESULT)}"


def test_download_unsatisfiable_range_is_416(user_client, finished_task):
    response = download(user_client, finished_task, Range="bytes=10000-10010")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(RESULT)}"


def test_download_inline_for_video_element(user_client, finished_task):
    response = user_client.get(reverse("task_download", args=[finished_task.pk]) + "?inline=1")
    assert response["Content-Disposition"].startswith("inline;")


def test_download_of_other_users_task_is_404(client, other_user, finished_task):
    client.force_login(other_user)
    assert download(client, finished_task).status_code == 404


def test_download_without_result_is_404(user_client, make_task):
    task = make_task(status=Status.RUNNING)
    assert download(user_client, task).status_code == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", None),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 99)),
        ("bytes=-200", (0, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=100-", False),
        ("bytes=-0", False),
        ("bytes=0-1,5-6", None),
        ("items=0-5", None),
        ("bytes=7-3", None),
    ],
)
def test_parse_range_cases(header, expected):
    assert parse_range(header, 100) == expected
