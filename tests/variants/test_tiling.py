"""Spatial tiling and KV-cache offload on the reduced model: outputs agree with the plain run.

Measured on a 2-core CPU with the reduced random-weight folder (torch default initialisation), 30 frames of
96x32 at 4x (384x128, tiles of 256 with 128 overlap). The mean absolute difference was 0.80 grey levels (of
255) in columns 0-95, away from the overlap, and 0.57 in the overlap, columns 128-255. The maximum was 4.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpu.params import RuntimeOptions, UpscaleParams
from gpu.upscalers import flashvsr

from .conftest import collect_frames
from .frames import textured_clip


def run(model_dir, images, variant="tiny_long", **params):
    upscaler = flashvsr.FlashVSRUpscaler(
        variant, RuntimeOptions(model_dir=str(model_dir)), UpscaleParams(variant=variant, **params)
    )
    upscaler.tile_size, upscaler.tile_overlap = 256, 128
    emitted = collect_frames(upscaler, images)
    assert [index for index, _ in emitted] == list(range(len(images)))
    return np.stack([frame for _, frame in emitted]).astype(np.float64)


@pytest.fixture(scope="module")
def clip():
    return textured_clip(30, 32, 96)


def test_tiled_matches_untiled(reduced_model_dir, clip):
    plain = run(reduced_model_dir, clip)
    tiled = run(reduced_model_dir, clip, tiled=True)

    assert tiled.shape == plain.shape == (30, 128, 384, 3)
    difference = np.abs(tiled - plain)
    away_from_overlap = difference[:, :, :96]
    across_overlap = difference[:, :, 128:256]
    assert away_from_overlap.mean() < 1.5
    assert across_overlap.mean() < 1.5
    assert difference.max() <= 8


def test_tiled_whole_clip_variant_matches(reduced_model_dir, clip):
    plain = run(reduced_model_dir, clip[:5], variant="tiny")
    tiled = run(reduced_model_dir, clip[:5], variant="tiny", tiled=True)

    assert np.abs(tiled - plain).mean() < 1.5


def test_kv_offload_changes_nothing(reduced_model_dir, clip):
    plain = run(reduced_model_dir, clip)
    offloaded = run(reduced_model_dir, clip, kv_offload=True)

    assert np.array_equal(offloaded, plain)


def test_tiny_and_tiny_long_agree(reduced_model_dir, clip):
    streaming = run(reduced_model_dir, clip)
    whole_clip = run(reduced_model_dir, clip, variant="tiny")

    assert np.array_equal(streaming, whole_clip)
