"""Exact frame counts and sizes through upscale_video with the reduced random-weight model.

Random weights destroy the picture, so the index mapping (output frame k shows source frame k) is checked
with a stand-in decoder that returns its conditioning frames, which are the upscaled source frames with
the same index. The counts, sizes and timestamps are checked with the real reduced model.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from gpu.api import upscale_video
from gpu.flashvsr import pipeline as flashvsr_pipeline
from gpu.model_cache import shared_cache
from gpu.params import RuntimeOptions, UpscaleParams
from gpu.upscalers import flashvsr
from tests.video.clips import make_clip, read_frame_index


def decoded_frames(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    return frames, stream.time_base


def source_pts(path):
    frames, time_base = decoded_frames(path)
    return [frame.pts * time_base for frame in frames]


def upscale(tmp_path, model_dir, frames, variant="tiny_long", size=(32, 24), **params):
    source = make_clip(tmp_path / f"source-{frames}.mp4", frames=frames, size=size)
    output = tmp_path / f"output-{frames}-{variant}.mp4"
    result = upscale_video(
        source,
        output,
        UpscaleParams(variant=variant, **params),
        options=RuntimeOptions(model_dir=str(model_dir)),
    )
    return source, output, result


@pytest.mark.parametrize("frames", [1, 2, 20, 21, 25, 100])
def test_tiny_long_keeps_every_frame(tmp_path, reduced_model_dir, frames):
    source, output, result = upscale(tmp_path, reduced_model_dir, frames)

    decoded, time_base = decoded_frames(output)
    assert result.frames == frames
    assert len(decoded) == frames
    assert {(frame.width, frame.height) for frame in decoded} == {(128, 96)}
    assert (result.width, result.height) == (128, 96)
    assert [frame.pts * time_base for frame in decoded] == source_pts(source)


@pytest.mark.parametrize(("variant", "frames"), [("tiny", 1), ("tiny", 22), ("full", 3)])
def test_whole_clip_variants_keep_every_frame(tmp_path, reduced_model_dir, variant, frames):
    source, output, result = upscale(tmp_path, reduced_model_dir, frames, variant=variant)

    decoded, _ = decoded_frames(output)
    assert result.frames == frames
    assert len(decoded) == frames
    assert {(frame.width, frame.height) for frame in decoded} == {(128, 96)}


def test_odd_size_scale_three_is_exact(tmp_path, reduced_model_dir):
    _, output, result = upscale(tmp_path, reduced_model_dir, 3, size=(50, 30), scale=3)

    decoded, _ = decoded_frames(output)
    assert len(decoded) == 3
    assert {(frame.width, frame.height) for frame in decoded} == {(150, 90)}


class ConditioningDecoder(torch.nn.Module):
    """A TCDecoder stand-in whose output is its conditioning input: the upscaled LQ frames."""

    def reset(self) -> None:
        pass

    def decode(self, latents, cond):
        return cond.clone()


@pytest.fixture
def conditioning_decoder(reduced_model_dir, monkeypatch):
    cache = shared_cache()
    real_weights = cache.weights

    def weights_with_stand_in(model_dir, variant, device, dtype=None):
        weights = real_weights(model_dir, variant, device, dtype)
        return flashvsr_pipeline.FlashVSRWeights(
            dit=weights.dit,
            lq_projector=weights.lq_projector,
            prompt=weights.prompt,
            tc_decoder=ConditioningDecoder(),
        )

    monkeypatch.setattr(cache, "weights", weights_with_stand_in)


@pytest.mark.parametrize(
    ("variant", "frames"), [("tiny_long", 1), ("tiny_long", 30), ("tiny_long", 45), ("tiny", 23)]
)
def test_output_frame_shows_same_source_frame(
    tmp_path, reduced_model_dir, conditioning_decoder, variant, frames
):
    _, output, _ = upscale(
        tmp_path, reduced_model_dir, frames, variant=variant, size=(64, 24), color_fix="none"
    )

    decoded, _ = decoded_frames(output)
    indexes = [read_frame_index(frame.to_ndarray(format="rgb24")) for frame in decoded]
    assert indexes == list(range(frames))


def test_tiled_output_frame_shows_same_source_frame(
    tmp_path, reduced_model_dir, conditioning_decoder, monkeypatch
):
    monkeypatch.setattr(flashvsr, "TILE_SIZE", 256)
    _, output, _ = upscale(tmp_path, reduced_model_dir, 30, size=(96, 32), color_fix="none", tiled=True)

    decoded, _ = decoded_frames(output)
    assert [read_frame_index(frame.to_ndarray(format="rgb24")) for frame in decoded] == list(range(30))
    assert {(frame.width, frame.height) for frame in decoded} == {(384, 128)}


def test_high_bit_depth_output_is_exact(tmp_path, reduced_model_dir):
    _, output, result = upscale(tmp_path, reduced_model_dir, 2, codec="hevc10", container="mkv")

    decoded, _ = decoded_frames(output)
    assert len(decoded) == 2
    assert (decoded[0].width, decoded[0].height) == (128, 96)
    assert decoded[0].format.name.endswith("10le")
    assert np.asarray(decoded[0].to_ndarray()).size > 0
