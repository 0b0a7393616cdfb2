"""DiT pieces: configuration from shapes, RoPE past the 1024-frame table, KV cache, streaming step."""

from __future__ import annotations

import math

import pytest
import torch
from small_models import SMALL_DIT

from gpu.flashvsr.attention import SparseAttentionSettings
from gpu.flashvsr.config import WAN21_1_3B, DiTConfig, LQProjConfig, head_dim_for
from gpu.flashvsr.dit import KVCache, WanDiT, partition_windows, reverse_windows
from gpu.flashvsr.rope import apply_rope, rope_axis_dims, rope_frequencies


def table_rotations(axis_dim: int, end: int = 1024) -> torch.Tensor:
    """The fixed 1024-position table the original code precomputes for one axis."""
    inverse = 1.0 / (10000.0 ** (torch.arange(0, axis_dim, 2)[: axis_dim // 2].double() / axis_dim))
    angles = torch.outer(torch.arange(end), inverse)
    return torch.polar(torch.ones_like(angles), angles)


def test_head_width_rule():
    assert head_dim_for(1536) == 128
    assert head_dim_for(64) == 32
    assert head_dim_for(96) == 32
    with pytest.raises(ValueError, match="not a multiple of 32"):
        head_dim_for(48)


def test_config_from_release_shapes():
    with torch.device("meta"):
        state_dict = WanDiT(WAN21_1_3B).state_dict()
    config = DiTConfig.from_state_dict(state_dict)
    assert config == WAN21_1_3B
    assert config.num_heads == 12


def test_config_from_small_shapes(small_weights):
    config = DiTConfig.from_state_dict(small_weights.dit.state_dict())
    assert config == SMALL_DIT
    assert config.num_heads == 2
    assert config.head_dim == 32


def test_config_rejects_unsplittable_head_width():
    with pytest.raises(ValueError, match="RoPE"):
        DiTConfig(
            dim=64, in_dim=16, out_dim=16, ffn_dim=64, text_dim=8, freq_dim=8, num_heads=1, num_layers=1
        )


def test_lq_projector_config_from_shapes(small_weights):
    config = LQProjConfig.from_state_dict(small_weights.lq_projector.state_dict())
    assert (config.hidden_dim1, config.hidden_dim2, config.out_dim, config.layer_num) == (32, 48, 64, 1)


def test_rope_axis_split():
    assert rope_axis_dims(128) == (44, 42, 42)
    assert rope_axis_dims(32) == (12, 10, 10)


def test_rope_matches_table_below_1024():
    rotations = rope_frequencies(128, torch.arange(1020, 1024), rows=2, cols=3).view(4, 2, 3, 64)
    temporal, rows, cols = table_rotations(44), table_rotations(42), table_rotations(42)
    assert torch.equal(rotations[:, 0, 0, :22], temporal[1020:1024])
    assert torch.equal(rotations[0, :, 0, 22:43], rows[:2])
    assert torch.equal(rotations[0, 0, :, 43:], cols[:3])


def test_rope_past_1024_frames():
    positions = torch.tensor([5000, 5001])
    rotations = rope_frequencies(128, positions, rows=1, cols=1)
    assert rotations.shape == (2, 1, 64)
    assert torch.allclose(rotations.abs(), torch.ones(2, 1, 64, dtype=torch.float64))
    # The lowest temporal frequency is 1 rad per frame.
    assert rotations[1, 0, 0].angle().item() == pytest.approx(math.remainder(5001.0, 2 * math.pi), abs=1e-9)


def test_rope_scores_depend_on_relative_position_only():
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(1, 2, 128, generator=generator)
    k = torch.randn(1, 2, 128, generator=generator)

    def score(first: int) -> float:
        rotations = rope_frequencies(128, torch.tensor([first, first + 1]), rows=1, cols=1)
        q_rot = apply_rope(q.double(), rotations, 1)
        k_rot = apply_rope(k.double(), rotations, 1)
        return float(q_rot[0, 1] @ k_rot[0, 0])

    assert score(4000) == pytest.approx(score(0), rel=1e-9)


def test_window_partition_round_trip():
    tokens = torch.arange(4 * 16 * 24, dtype=torch.float32).view(1, -1, 1)
    windows = partition_windows(tokens, 4, 16, 24)
    assert windows.shape == (12, 128, 1)
    # Window 1 of slab 0 starts at token row 0, column 8 of frame 0.
    assert windows[1, 0, 0].item() == 8
    # Inside a window, tokens are ordered (t, y, x): the 65th token is frame 1.
    assert windows[0, 64, 0].item() == 16 * 24
    assert torch.equal(reverse_windows(windows, 4, 16, 24), tokens)


def test_kv_cache_drops_one_oldest_slab():
    cache = KVCache(max_slabs=3)
    slab = torch.zeros(6, 128, 4)
    first = torch.cat([slab + 0, slab + 1, slab + 2])
    cache.store(0, first, first, windows_per_slab=6)
    assert cache.get(0)[0].shape[0] == 18
    attended = torch.cat([cache.get(0)[0], slab + 3])
    cache.store(0, attended, attended, windows_per_slab=6)
    keys = cache.get(0)[0]
    assert keys.shape[0] == 18
    assert keys[0, 0, 0].item() == 1
    assert keys[-1, 0, 0].item() == 3


def test_kv_cache_drops_one_slab_per_store():
    cache = KVCache(max_slabs=1)
    slabs = torch.cat([torch.full((2, 128, 4), float(i)) for i in range(3)])
    cache.store(0, slabs, slabs, windows_per_slab=2)
    assert cache.get(0)[0].shape[0] == 4


def test_stream_step_far_frame_index_matches_frame_zero(small_weights):
    """Without a cache only relative positions matter, so frame 5000 gives the frame-0 result."""
    dit = small_weights.dit
    prompt = dit.prepare_prompt(small_weights.prompt)
    settings = SparseAttentionSettings(topk_ratio=2.0, local_range=11, kv_ratio=3)
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 16, 2, 32, 32, generator=generator)
    features = [torch.randn(1, 2 * 16 * 16, 64, generator=generator)]
    near = dit.stream_step(latents, features, 0, prompt, KVCache(3), settings)
    far = dit.stream_step(latents, features, 5000, prompt, KVCache(3), settings)
    assert near.shape == (1, 16, 2, 32, 32)
    assert (near - far).abs().max() < 1e-4


def test_stream_step_uses_kv_cache(small_weights):
    dit = small_weights.dit
    prompt = dit.prepare_prompt(small_weights.prompt)
    settings = SparseAttentionSettings()
    generator = torch.Generator().manual_seed(2)
    first = torch.randn(1, 16, 6, 16, 16, generator=generator)
    second = torch.randn(1, 16, 2, 16, 16, generator=generator)
    no_features: list[torch.Tensor] = []
    cache = KVCache(3)
    dit.stream_step(first, no_features, 0, prompt, cache, settings)
    masks = {}
    with_cache = dit.stream_step(
        second, no_features, 6, prompt, cache, settings, lambda n, t: masks.update({n: t})
    )
    without = dit.stream_step(second, no_features, 6, prompt, KVCache(3), settings)
    assert masks["mask.layer0"].shape == (1, 2, 1, 4)
    assert (with_cache - without).abs().max() > 1e-3
    assert len(cache.entries) == 2
    assert cache.get(1)[0].shape[0] == 3


def test_stream_step_rejects_unaligned_latents(small_weights):
    dit = small_weights.dit
    prompt = dit.prepare_prompt(small_weights.prompt)
    with pytest.raises(ValueError, match="2x16x16 windows"):
        dit.stream_step(torch.zeros(1, 16, 2, 24, 16), [], 0, prompt, KVCache(3), SparseAttentionSettings())


def test_stream_step_release_head_width():
    """128-wide heads split RoPE 44/42/42; the step runs and stays translation invariant in time."""
    from small_models import randomise

    config = DiTConfig(
        dim=256, in_dim=16, out_dim=16, ffn_dim=512, text_dim=32, freq_dim=256, num_heads=2, num_layers=1
    )
    assert config.head_dim == 128
    dit = randomise(WanDiT(config), seed=4)
    prompt = dit.prepare_prompt(torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(5)))
    latents = torch.randn(1, 16, 2, 16, 16, generator=torch.Generator().manual_seed(6))
    settings = SparseAttentionSettings()
    near = dit.stream_step(latents, [], 0, prompt, KVCache(3), settings)
    far = dit.stream_step(latents, [], 3000, prompt, KVCache(3), settings)
    assert near.shape == (1, 16, 2, 16, 16)
    assert (near - far).abs().max() < 1e-4
