"""Failures of a FlashVSR run end with an error that names what to change, and leave no output behind."""

from __future__ import annotations

import shutil
import subprocess
import sys

import av
import pytest
import torch

from gpu.api import upscale_video
from gpu.model_cache import shared_cache
from gpu.params import DecodeError, ModelError, RuntimeOptions, UpscaleParams
from gpu.upscalers import flashvsr
from gpu.video.decode import FrameReader
from tests.video.clips import make_clip


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "source.mp4", frames=30, size=(32, 24))


def options(model_dir):
    return RuntimeOptions(model_dir=str(model_dir))


def test_out_of_gpu_memory_names_the_fixes(tmp_path, reduced_model_dir, clip, monkeypatch):
    def exhausted(self, color_fix, writer):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(flashvsr.TileStream, "step", exhausted)

    with pytest.raises(ModelError) as raised:
        upscale_video(clip, tmp_path / "out.mp4", UpscaleParams(), options=options(reduced_model_dir))

    message = raised.value.user_message
    assert "ran out of memory" in message
    assert "smaller scale than 4" in message
    assert "turn tiling on" in message
    assert "Tried to allocate" in raised.value.detail
    assert not (tmp_path / "out.mp4").exists()


def test_out_of_memory_on_full_suggests_tiny_long(tmp_path, reduced_model_dir, clip, monkeypatch):
    def exhausted(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(flashvsr.FlashVSRFullPipeline, "__call__", exhausted)

    with pytest.raises(ModelError, match="tiny_long"):
        upscale_video(
            clip,
            tmp_path / "out.mp4",
            UpscaleParams(variant="full", scale=2),
            options=options(reduced_model_dir),
        )
    assert not (tmp_path / "out.mp4").exists()


def test_corrupt_weight_file_fails_with_advice(tmp_path, reduced_model_dir, clip):
    damaged = tmp_path / "damaged-weights"
    shutil.copytree(reduced_model_dir, damaged)
    dit = damaged / "diffusion_pytorch_model_streaming_dmd.safetensors"
    data = bytearray(dit.read_bytes())
    data[8:40] = b"\xff" * 32
    dit.write_bytes(bytes(data))

    with pytest.raises(ModelError) as raised:
        upscale_video(clip, tmp_path / "out.mp4", UpscaleParams(), options=options(damaged))

    assert "could not be loaded" in raised.value.user_message
    assert "flashvsr_assets --verify" in raised.value.user_message
    assert "diffusion_pytorch_model_streaming_dmd.safetensors" in raised.value.detail
    assert not (tmp_path / "out.mp4").exists()


def test_missing_weight_folder_fails_with_advice(tmp_path, clip):
    with pytest.raises(ModelError, match="download_weights"):
        upscale_video(clip, tmp_path / "out.mp4", UpscaleParams(), options=options(tmp_path / "nowhere"))


class BreakingReader:
    """The real FrameReader, raising DecodeError at frame 10 like a file damaged there."""

    fail_at = 10

    def __init__(self, *args, **kwargs):
        self._reader = FrameReader(*args, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._reader.close()

    def __iter__(self):
        for decoded in self._reader:
            if decoded.index == self.fail_at:
                raise DecodeError("damaged", frame_index=self.fail_at)
            yield decoded


def test_decode_error_fails_the_run(tmp_path, reduced_model_dir, clip, monkeypatch):
    monkeypatch.setattr("gpu.api.FrameReader", BreakingReader)

    with pytest.raises(DecodeError) as raised:
        upscale_video(clip, tmp_path / "out.mp4", UpscaleParams(), options=options(reduced_model_dir))

    assert raised.value.frame_index == 10
    assert not (tmp_path / "out.mp4").exists()


def test_decode_error_can_keep_earlier_frames(tmp_path, reduced_model_dir, clip, monkeypatch):
    monkeypatch.setattr("gpu.api.FrameReader", BreakingReader)
    params = UpscaleParams(keep_partial_on_decode_error=True)

    result = upscale_video(clip, tmp_path / "out.mp4", params, options=options(reduced_model_dir))

    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = list(container.decode(video=0))
    assert result.frames == 10
    assert len(frames) == 10
    assert any("frame 10" in note for note in result.notes)


def test_variants_share_loaded_modules(reduced_model_dir):
    cache = shared_cache()

    tiny_long = cache.weights(reduced_model_dir, "tiny_long", "cpu")
    tiny = cache.weights(reduced_model_dir, "tiny", "cpu")
    full = cache.weights(reduced_model_dir, "full", "cpu")

    assert tiny.dit is tiny_long.dit is full.dit
    assert tiny.lq_projector is full.lq_projector
    assert tiny.tc_decoder is tiny_long.tc_decoder
    assert full.vae_decoder is not None and full.tc_decoder is None
    assert cache.loaded_parts() == ["dit", "lq_projector", "prompt", "tc_decoder", "vae_decoder"]


def test_web_side_imports_load_no_model():
    code = (
        "import sys, django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'flashvsr_site.settings_test')\n"
        "django.setup()\n"
        "import gpu.api, gpu.assets, gpu.upscalers, tasks_app.views, tasks_app.forms, tasks_app.jobs\n"
        "gpu.assets.report('models/none')\n"
        "print('torch' in sys.modules, 'gpu.model_cache' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "False"]
