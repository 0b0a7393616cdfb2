"""Block mask selection and block-sparse attention: CPU dense path, empty windows, FlexAttention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gpu.flashvsr import attention
from gpu.flashvsr.attention import (
    SparseAttentionSettings,
    block_sparse_attention,
    build_block_mask,
    dense_masked_attention,
    locality_mask,
)

W = 128  # tokens per window


def naive_block_attention(q, k, v, block_mask, num_heads):
    """Reference: expand the block mask to tokens and run SDPA per head; empty rows give zeros."""
    out = torch.zeros_like(q)
    head_dim = q.shape[1] // num_heads
    for head in range(num_heads):
        channels = slice(head * head_dim, (head + 1) * head_dim)
        token_mask = block_mask[0, head].repeat_interleave(W, 0).repeat_interleave(W, 1)
        result = F.scaled_dot_product_attention(
            q[None, :, channels].double(),
            k[None, :, channels].double(),
            v[None, :, channels].double(),
            attn_mask=token_mask[None],
        )[0]
        out[:, channels] = torch.nan_to_num(result, nan=0.0).float()
    return out


def random_qkv(q_windows, k_windows, dim=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(q_windows * W, dim, generator=generator)
    k = torch.randn(k_windows * W, dim, generator=generator)
    v = torch.randn(k_windows * W, dim, generator=generator)
    return q, k, v


def test_dense_path_matches_naive_reference():
    q, k, v = random_qkv(3, 5)
    mask = torch.rand(1, 2, 3, 5, generator=torch.Generator().manual_seed(1)) > 0.4
    mask[0, 0, 0] = True
    result = dense_masked_attention(q, k, v, mask, num_heads=2)
    expected = naive_block_attention(q, k, v, mask, num_heads=2)
    assert (result - expected).abs().max() < 1e-5


def test_dense_path_chunking_is_exact(monkeypatch):
    q, k, v = random_qkv(4, 4)
    mask = torch.rand(1, 2, 4, 4, generator=torch.Generator().manual_seed(2)) > 0.3
    whole = dense_masked_attention(q, k, v, mask, num_heads=2)
    # One query window per chunk.
    monkeypatch.setattr(attention, "DENSE_CHUNK_BYTES", W * 4 * W * 4)
    chunked = dense_masked_attention(q, k, v, mask, num_heads=2)
    assert torch.equal(whole, chunked)


def test_empty_query_window_outputs_zeros():
    q, k, v = random_qkv(2, 3)
    mask = torch.ones(1, 2, 2, 3, dtype=torch.bool)
    mask[0, 1, 0] = False  # head 1, query window 0 has no key window
    out = block_sparse_attention(q, k, v, mask, num_heads=2)
    head1 = slice(32, 64)
    assert torch.count_nonzero(out[:W, head1]) == 0
    assert torch.isfinite(out).all()
    assert out[:W, :32].abs().sum() > 0
    assert out[W:, head1].abs().sum() > 0


def test_masked_key_windows_do_not_contribute():
    q, k, v = random_qkv(1, 2)
    mask = torch.tensor([[[[True, False]], [[True, False]]]])
    out = dense_masked_attention(q, k, v, mask, num_heads=2)
    only_first = dense_masked_attention(q, k[:W], v[:W], mask[..., :1], num_heads=2)
    assert (out - only_first).abs().max() < 1e-6


def test_failed_flex_attention_falls_back_to_dense(monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("Triton not found")

    monkeypatch.setattr(attention, "_use_flex_attention", lambda q: not attention._flex_unavailable)
    monkeypatch.setattr(attention, "_flex_unavailable", False)
    monkeypatch.setattr(attention, "flex_block_sparse_attention", broken)
    q, k, v = random_qkv(2, 2)
    mask = torch.ones(1, 2, 2, 2, dtype=torch.bool)
    out = block_sparse_attention(q, k, v, mask, num_heads=2)
    assert torch.equal(out, dense_masked_attention(q, k, v, mask, num_heads=2))
    assert attention._flex_unavailable
    assert "FlexAttention failed" in caplog.text


def test_token_counts_must_be_window_multiples():
    q, k, v = random_qkv(1, 1)
    with pytest.raises(ValueError, match="multiples of 128"):
        block_sparse_attention(q[:100], k, v, torch.ones(1, 2, 1, 1, dtype=torch.bool), num_heads=2)


def test_locality_mask_not_clamped_at_borders():
    mask = locality_mask(1, 5, local_range=3)
    # The range starts at c - 1, so column 0 attends to columns 0-1 only and column 2 to 1-3.
    assert mask[0].tolist() == [True, True, False, False, False]
    assert mask[2].tolist() == [False, True, True, True, False]
    assert mask[4].tolist() == [False, False, False, True, True]


def test_locality_mask_even_range_looks_back_further():
    mask = locality_mask(1, 6, local_range=4)
    # Start is c - 2, end is c + 1.
    assert mask[3].tolist() == [False, True, True, True, True, False]


def test_topk_larger_than_group_drops_one_minimum():
    generator = torch.Generator().manual_seed(3)
    q_windows = torch.randn(6, W, 64, generator=generator)
    k_windows = torch.randn(6, W, 64, generator=generator)
    mask = build_block_mask(
        q_windows, k_windows, 2, 1, topk=719, local_mask=torch.ones(6, 6, dtype=torch.bool)
    )
    assert mask.shape == (1, 2, 6, 6)
    assert mask.sum(dim=(2, 3)).tolist() == [[35, 35]]


def test_topk_selects_highest_probabilities():
    generator = torch.Generator().manual_seed(4)
    q_windows = torch.randn(2, W, 32, generator=generator)
    k_windows = torch.randn(2, W, 32, generator=generator)
    mask = build_block_mask(q_windows, k_windows, 1, 1, topk=1, local_mask=torch.ones(2, 2, dtype=torch.bool))
    q_mean = q_windows.mean(1)
    k_mean = k_windows.mean(1)
    probs = torch.softmax(q_mean @ k_mean.T / 32**0.5, dim=-1).flatten()
    assert mask.sum() == 1
    assert mask.flatten()[probs.argmax()]


def test_locality_excluded_windows_never_kept():
    generator = torch.Generator().manual_seed(5)
    q_windows = torch.randn(3, W, 32, generator=generator)
    k_windows = torch.randn(3, W, 32, generator=generator)
    local = locality_mask(1, 3, local_range=1)
    mask = build_block_mask(q_windows, k_windows, 1, 1, topk=100, local_mask=local)
    assert torch.equal(mask[0, 0] & ~local, torch.zeros(3, 3, dtype=torch.bool))


def test_settings_topk_formula():
    settings = SparseAttentionSettings(topk_ratio=20.0)
    assert settings.topk(6) == 719
    assert SparseAttentionSettings(topk_ratio=1.5).topk(6) == 53
    assert SparseAttentionSettings(kv_ratio=3.7).kv_slabs == 3


def test_settings_from_sparse_ratio():
    settings = SparseAttentionSettings.from_sparse_ratio(2.0, 768, 1280)
    assert settings.topk_ratio == pytest.approx(2.0)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.skipif(attention.flex_attention is None, reason="this torch build has no FlexAttention")
def test_flex_block_mask_matches_dense_path_eager():
    """The BlockMask built for CUDA selects the same blocks; eager FlexAttention checks it on the CPU."""
    q, k, v = random_qkv(3, 5, seed=11)
    mask = torch.rand(1, 2, 3, 5, generator=torch.Generator().manual_seed(12)) > 0.5
    mask[0, 1, 1] = False
    flex_mask = attention.to_flex_block_mask(mask[0], q.shape[0], k.shape[0])
    # The block lists drive the compiled kernel, the mask_mod drives eager mode: check both.
    assert torch.equal(flex_mask.to_dense()[0].bool(), mask[0])
    heads = [t.view(1, -1, 2, 32).transpose(1, 2) for t in (q, k, v)]
    got = attention.flex_attention(*heads, block_mask=flex_mask).transpose(1, 2).reshape(-1, 64)
    expected = dense_masked_attention(q, k, v, mask, num_heads=2)
    assert (got - expected).abs().max() < 1e-5
    assert torch.count_nonzero(got[W : 2 * W, 32:]) == 0


@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_flex_attention_matches_dense_path():
    q, k, v = random_qkv(6, 24, dim=256, seed=7)
    mask = torch.rand(1, 2, 6, 24, generator=torch.Generator().manual_seed(8)) > 0.5
    mask[0, 1, 2] = False  # one empty query window
    expected = dense_masked_attention(q.double(), k.double(), v.double(), mask, num_heads=2).float()
    got = attention.flex_block_sparse_attention(q.cuda(), k.cuda(), v.cuda(), mask.cuda(), num_heads=2).cpu()
    assert torch.count_nonzero(got[2 * W : 3 * W, 128:]) == 0
    assert (got - expected).abs().max() < 2e-3


@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_flex_attention_bf16_release_head_width():
    q, k, v = random_qkv(4, 8, dim=12 * 128, seed=9)
    mask = torch.rand(1, 12, 4, 8, generator=torch.Generator().manual_seed(10)) > 0.5
    expected = dense_masked_attention(q, k, v, mask, num_heads=12)
    got = (
        attention.flex_block_sparse_attention(
            q.cuda().bfloat16(), k.cuda().bfloat16(), v.cuda().bfloat16(), mask.cuda(), num_heads=12
        )
        .float()
        .cpu()
    )
    assert (got - expected).abs().max() < 5e-2
