"""Media endpoints of the task page (live preview, before/after stills, inline source) and the form config."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from tasks_app import comparison
from tasks_app.estimates import estimate_seconds
from tasks_app.models import Status
from tests.video.clips import make_clip, read_frame_index

pytestmark = pytest.mark.django_db

FRAMES = 15
SOURCE_SIZE = (64, 48)
SCALE = 2


def jpeg_bytes(size=(32, 24), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def finished_task(make_task, tmp_path):
    source = make_clip(tmp_path / "source.mp4", frames=FRAMES, size=SOURCE_SIZE)
    result = make_clip(
        tmp_path / "result.mp4", frames=FRAMES, size=(SOURCE_SIZE[0] * SCALE, SOURCE_SIZE[1] * SCALE)
    )
    task = make_task(
        input_bytes=source.read_bytes(),
        original_filename="Harbour.MP4",
        status=Status.SUCCEEDED,
        scale=SCALE,
        total_frames=FRAMES,
    )
    task.result_file.save("ignored", ContentFile(result.read_bytes()), save=False)
    task.save()
    return task


# --- live preview ---------------------------------------------------------------------------------------


def test_preview_served_uncached_to_owner(user_client, make_task):
    task = make_task(status=Status.RUNNING)
    task.preview_file.save("ignored", ContentFile(jpeg_bytes()), save=True)
    response = user_client.get(reverse("task_preview", args=[task.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "no-cache" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    assert Image.open(io.BytesIO(body(response))).size == (32, 24)


def test_preview_hidden_from_other_user(client, other_user, make_task):
    task = make_task(status=Status.RUNNING)
    task.preview_file.save("ignored", ContentFile(jpeg_bytes()), save=True)
    client.force_login(other_user)
    assert client.get(reverse("task_preview", args=[task.pk])).status_code == 404


def test_preview_missing_is_404(user_client, make_task):
    without = make_task(status=Status.RUNNING)
    assert user_client.get(reverse("task_preview", args=[without.pk])).status_code == 404
    file_missing = make_task(status=Status.RUNNING, preview_file="previews/not-there.jpg")
    assert user_client.get(reverse("task_preview", args=[file_missing.pk])).status_code == 404


def test_running_detail_page_shows_preview(user_client, make_task):
    task = make_task(status=Status.RUNNING, processed_frames=7, total_frames=20)
    task.preview_file.save("ignored", ContentFile(jpeg_bytes()), save=True)
    page = user_client.get(reverse("task_detail", args=[task.pk])).content.decode()
    assert f'src="{reverse("task_preview", args=[task.pk])}?frame=7"' in page
    assert 'hx-trigger="every 2s"' in page


# --- before/after stills --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", comparison.KINDS)
def test_comparison_image_shows_same_frame_at_output_size(user_client, finished_task, kind):
    response = user_client.get(reverse("task_comparison_image", args=[finished_task.pk, kind]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(body(response)))
    assert picture.size == (SOURCE_SIZE[0] * SCALE, SOURCE_SIZE[1] * SCALE)
    assert read_frame_index(np.asarray(picture.convert("RGB"))) == comparison.frame_index(FRAMES)
    assert comparison.image_path(finished_task, kind).is_file()


def test_comparison_image_is_made_once(user_client, finished_task):
    url = reverse("task_comparison_image", args=[finished_task.pk, "after"])
    assert user_client.get(url).status_code == 200
    path = comparison.image_path(finished_task, "after")
    first_write = path.stat().st_mtime_ns
    assert user_client.get(url).status_code == 200
    assert path.stat().st_mtime_ns == first_write


def test_comparison_frame_index_is_middle_and_capped():
    assert comparison.frame_index(0) == 0
    assert comparison.frame_index(1) == 0
    assert comparison.frame_index(15) == 7
    assert comparison.frame_index(100_000) == comparison.MAX_FRAME_INDEX


def test_comparison_unknown_kind_or_unfinished(user_client, finished_task, make_task):
    assert (
        user_client.get(reverse("task_comparison_image", args=[finished_task.pk, "middle"])).status_code
        == 404
    )
    running = make_task(status=Status.RUNNING)
    assert user_client.get(reverse("task_comparison_image", args=[running.pk, "after"])).status_code == 404


def test_comparison_hidden_from_other_user(client, other_user, finished_task):
    client.force_login(other_user)
    response = client.get(reverse("task_comparison_image", args=[finished_task.pk, "after"]))
    assert response.status_code == 404
    assert not comparison.image_path(finished_task, "after").exists()


def test_broken_result_comparison_404(user_client, finished_task, media_root):
    with open(finished_task.result_file.path, "wb") as handle:
        handle.write(b"\x00" * 4096)
    response = user_client.get(reverse("task_comparison_image", args=[finished_task.pk, "after"]))
    assert response.status_code == 404
    assert sorted(path.name for path in (media_root / "previews").glob("*")) == []


def test_succeeded_page_shows_comparison(user_client, finished_task):
    page = user_client.get(reverse("task_detail", args=[finished_task.pk])).content.decode()
    for kind in comparison.KINDS:
        assert reverse("task_comparison_image", args=[finished_task.pk, kind]) in page
    assert re.search(r'<input type="range" id="comparison-slider-[^"]+" min="0" max="100" value="50">', page)
    assert (
        f'<video controls preload="metadata" src="{reverse("task_source", args=[finished_task.pk])}"' in page
    )
    assert f'src="{reverse("task_download", args=[finished_task.pk])}?inline=1"' in page


# --- inline source video --------------------------------------------------------------------------------


def test_source_served_inline_with_type_from_name(user_client, finished_task):
    response = user_client.get(reverse("task_source", args=[finished_task.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Disposition"].startswith("inline")
    assert response["Accept-Ranges"] == "bytes"
    with open(finished_task.input_file.path, "rb") as handle:
        assert body(response) == handle.read()


def test_source_answers_range_request(user_client, finished_task):
    response = user_client.get(
        reverse("task_source", args=[finished_task.pk]), headers={"Range": "bytes=10-29"}
    )
    assert response.status_code == 206
    with open(finished_task.input_file.path, "rb") as handle:
        assert body(response) == handle.read()[10:30]
    assert response["Content-Length"] == "20"


def test_source_hidden_from_other_user(client, other_user, finished_task):
    client.force_login(other_user)
    assert client.get(reverse("task_source", args=[finished_task.pk])).status_code == 404


# --- upload form configuration --------------------------------------------------------------------------


def test_home_page_carries_upload_config(user_client, settings):
    settings.FLASHVSR_MAX_OUTPUT_PIXELS = 1234567
    page = user_client.get(reverse("home")).content.decode()
    match = re.search(r'<script id="upload-config" type="application/json">(.*?)</script>', page, re.S)
    assert match
    config = json.loads(match.group(1))
    assert config["maxOutputPixels"] == 1234567
    assert set(config["secondsPerOutputMegapixel"]) == {"tiny_long", "tiny", "full", "lanczos"}
    assert "{width}" in config["messages"]["output"]


def test_estimate_scales_with_frames_and_pixels():
    base_estimate = estimate_seconds("tiny", 100, 1920, 1080)
    assert base_estimate == pytest.approx(100 * 1920 * 1080 / 1e6 * 0.06)
    assert estimate_seconds("tiny", 200, 1920, 1080) == pytest.approx(2 * base_estimate)
    assert estimate_seconds("unknown", 100, 1920, 1080) is None
