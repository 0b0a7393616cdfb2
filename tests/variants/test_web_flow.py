"""The web flow with FlashVSR: upload, run the job in this process, check the result and the status panel."""

from __future__ import annotations

import shutil

import av
import pytest
from django.urls import reverse

from gpu import assets
from tasks_app import jobs
from tasks_app.forms import UploadForm
from tasks_app.models import Status, Task
from tasks_app.preload import preload_variants
from tests.video.clips import make_clip

pytestmark = pytest.mark.django_db


def post_upload(client, path, **fields):
    with open(path, "rb") as handle:
        return client.post(
            reverse("task_create"), {"variant": "tiny_long", "scale": "4", "video": handle, **fields}
        )


def test_tiny_long_upload_gives_every_frame_at_4x(user_client, tmp_path, reduced_model_dir, settings):
    settings.FLASHVSR_MODEL_DIR = reduced_model_dir
    clip = make_clip(tmp_path / "walk.mp4", frames=100, size=(32, 24))

    response = post_upload(user_client, clip)

    assert response.status_code == 302
    task = Task.objects.get()
    assert task.variant == "tiny_long"
    assert jobs.run_upscale(str(task.pk)) == Status.SUCCEEDED
    task.refresh_from_db()
    assert task.processed_frames == 100
    with av.open(task.result_file.path) as result:
        frames = list(result.decode(video=0))
    assert len(frames) == 100
    assert {(frame.width, frame.height) for frame in frames} == {(128, 96)}

    panel = user_client.get(reverse("status_panel")).content.decode()
    assert "tiny_long: ready: 4 files, reduced test weights, sizes checked" in panel


def test_form_marks_and_rejects_variant_without_weights(user_client, tmp_path, reduced_model_dir, settings):
    folder = tmp_path / "weights"
    shutil.copytree(reduced_model_dir, folder)
    (folder / assets.VAE_FILE).unlink()
    settings.FLASHVSR_MODEL_DIR = folder
    clip = make_clip(tmp_path / "walk.mp4", frames=3, size=(32, 24))

    home = user_client.get(reverse("home")).content.decode()
    response = post_upload(user_client, clip, variant="full")

    assert "FlashVSR Full (weights missing)" in home
    assert "FlashVSR Tiny-Long (weights missing)" not in home
    assert "python manage.py download_weights" in home
    page = response.content.decode()
    assert response.status_code == 200
    assert "The weights of the FlashVSR Full model are missing or damaged" in page
    assert "download_weights" in page
    assert Task.objects.count() == 0


def test_form_preselects_lanczos_without_default_weights(tmp_path, settings):
    settings.FLASHVSR_MODEL_DIR = tmp_path / "no-weights"
    settings.DEFAULT_MODEL_VARIANT = "tiny_long"

    form = UploadForm()

    assert form.fields["variant"].initial == "lanczos"


def test_form_preselects_default_variant_when_ready(reduced_model_dir, settings):
    settings.FLASHVSR_MODEL_DIR = reduced_model_dir
    settings.DEFAULT_MODEL_VARIANT = "tiny_long"

    form = UploadForm()

    assert form.fields["variant"].initial == "tiny_long"


def test_form_offers_every_ready_variant(reduced_model_dir, settings):
    settings.FLASHVSR_MODEL_DIR = reduced_model_dir

    form = UploadForm()

    assert form.unready_variants == {}
    assert "weights missing" not in str(form["variant"])
    assert "trained for" in str(form.fields["scale"].help_text)


def test_preload_loads_configured_variants(reduced_model_dir, settings):
    from gpu.model_cache import shared_cache

    settings.FLASHVSR_MODEL_DIR = reduced_model_dir
    settings.MODEL_VARIANTS_TO_PRELOAD = ["tiny_long", "full"]

    assert preload_variants() == []
    assert shared_cache().loaded_parts() == ["dit", "lq_projector", "prompt", "tc_decoder", "vae_decoder"]


def test_preload_reports_failed_variant(tmp_path, settings):
    settings.FLASHVSR_MODEL_DIR = tmp_path / "empty"
    settings.MODEL_VARIANTS_TO_PRELOAD = ["tiny"]

    assert preload_variants() == ["tiny"]
