"""Locality-constrained block-sparse attention (LCSA) of FlashVSR.

Tokens arrive window-partitioned: each run of 128 tokens is one window (2 latent frames x 8 x 8 tokens).
A boolean block mask `[1, heads, query_windows, key_windows]` marks the window pairs that attend. Query
windows without any key window output zeros, as the original block-sparse kernel does.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from gpu.flashvsr.config import WINDOW_SIZE

logger = logging.getLogger(__name__)

try:
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
except ImportError:  # older torch builds without FlexAttention
    BlockMask = None
    flex_attention = None

# Bytes of float32 scores the dense-masked path may hold at once (per head and query-window group).
DENSE_CHUNK_BYTES = 64 * 1024 * 1024
DENSE_CHUNK_BYTES_CUDA = 1024 * 1024 * 1024

_compiled_flex_attention = None
_flex_unavailable = False


@dataclass(frozen=True)
class SparseAttentionSettings:
    """The LCSA knobs of one pipeline call."""

    topk_ratio: float = 2.0
    local_range: int = 11
    kv_ratio: float = 3.0

    def __post_init__(self) -> None:
        if self.topk_ratio <= 0:
            raise ValueError(f"topk_ratio must be positive, got {self.topk_ratio}")
        if self.local_range < 1:
            raise ValueError(f"local_range must be at least 1, got {self.local_range}")
        if self.kv_ratio < 1:
            raise ValueError(f"kv_ratio must be at least 1, got {self.kv_ratio}")

    @property
    def kv_slabs(self) -> int:
        """Slabs kept in the self-attention KV cache between steps."""
        return int(self.kv_ratio)

    def topk(self, windows_per_slab: int) -> int:
        """Block count kept per (head, query slab) before the strict-threshold quirk."""
        return int(windows_per_slab * windows_per_slab * self.topk_ratio) - 1

    @classmethod
    def from_sparse_ratio(
        cls, sparse_ratio: float, height: int, width: int, **kwargs
    ) -> SparseAttentionSettings:
        """Convert the scripts' `sparse_ratio` into `topk_ratio` for an output of `height` x `width`."""
        return cls(topk_ratio=sparse_ratio * 768 * 1280 / (height * width), **kwargs)


def locality_mask(rows: int, cols: int, local_range: int, device: torch.device | None = None) -> torch.Tensor:
    """Return the `[P, P]` window-grid mask: window (r, c) attends to (r', c') in range.

    The range starts `local_range // 2` before the query window and is not shifted at the borders, so
    border windows attend to fewer neighbours.
    """
    grid_r, grid_c = torch.meshgrid(
        torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij"
    )
    r = grid_r.reshape(-1)
    c = grid_c.reshape(-1)
    start_r = r - local_range // 2
    start_c = c - local_range // 2
    in_rows = (r[None, :] >= start_r[:, None]) & (r[None, :] <= start_r[:, None] + local_range - 1)
    in_cols = (c[None, :] >= start_c[:, None]) & (c[None, :] <= start_c[:, None] + local_range - 1)
    return in_rows & in_cols


def build_block_mask(
    q_windows: torch.Tensor,
    k_windows: torch.Tensor,
    num_heads: int,
    query_slabs: int,
    topk: int,
    local_mask: torch.Tensor,
) -> torch.Tensor:
    """Select the attended window pairs from window-mean scores.

    q_windows: `[Sq*P, 128, dim]`, k_windows: `[Sk*P, 128, dim]` (after RMSNorm and RoPE).
    Returns a bool mask `[1, heads, Sq*P, Sk*P]`. Per (head, query slab) group, entries strictly above
    the `(min(topk, n-1)+1)`-th largest softmax probability are kept, so ties at the threshold drop.
    """
    q_mean = q_windows.mean(dim=1).unflatten(-1, (num_heads, -1)).transpose(0, 1)
    k_mean = k_windows.mean(dim=1).unflatten(-1, (num_heads, -1)).transpose(0, 1)
    head_dim = q_mean.shape[-1]
    scores = torch.einsum("hld,hmd->hlm", q_mean, k_mean) / math.sqrt(head_dim)

    windows = local_mask.shape[0]
    tiled = local_mask.repeat(scores.shape[1] // windows, scores.shape[2] // windows)
    bias = torch.zeros(tiled.shape, dtype=torch.float32, device=scores.device)
    bias.masked_fill_(~tiled, float("-inf"))
    # The float32 bias promotes bfloat16 scores, so the softmax always runs in float32.
    probs = torch.softmax(scores + bias, dim=-1)

    groups = probs.reshape(num_heads * query_slabs, -1)
    n = groups.shape[1]
    kept_rank = min(n - 1, topk)
    thresholds = torch.kthvalue(groups, n - kept_rank, dim=1, keepdim=True).values
    mask = (groups > thresholds).reshape(num_heads, query_slabs * windows, -1)
    return mask.unsqueeze(0)


def block_sparse_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """Attend window-partitioned tokens under a block mask.

    q: `[Lq, dim]`, k and v: `[Lk, dim]`, block_mask: `[1, heads, Lq/128, Lk/128]`. Returns `[Lq, dim]`.
    CUDA tensors use FlexAttention with a real BlockMask; others use the exact dense-masked path.
    """
    if q.shape[0] % WINDOW_SIZE or k.shape[0] % WINDOW_SIZE:
        raise ValueError(f"token counts {q.shape[0]} and {k.shape[0]} must be multiples of {WINDOW_SIZE}")
    if _use_flex_attention(q):
        try:
            return flex_block_sparse_attention(q, k, v, block_mask, num_heads)
        except torch.OutOfMemoryError:
            raise
        except Exception:  # compilation needs Triton and a C compiler, whose errors vary
            _disable_flex_attention()
    return dense_masked_attention(q, k, v, block_mask, num_heads)


def _use_flex_attention(q: torch.Tensor) -> bool:
    return q.is_cuda and flex_attention is not None and not _flex_unavailable


def _disable_flex_attention() -> None:
    global _flex_unavailable
    _flex_unavailable = True
    logger.warning(
        "FlexAttention failed on this GPU; using the slower exact dense-masked attention from now on",
        exc_info=True,
    )


def dense_masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """Compute block-masked attention exactly, one head and one group of query windows at a time.

    The full `[heads, Lq, Lk]` score matrix is never built. Each chunk contains at most
    `DENSE_CHUNK_BYTES` (CPU) or `DENSE_CHUNK_BYTES_CUDA` of float32 scores. Scores and softmax run in
    float32.
    """
    lq, dim = q.shape
    lk = k.shape[0]
    head_dim = dim // num_heads
    scale = 1.0 / math.sqrt(head_dim)
    budget = DENSE_CHUNK_BYTES_CUDA if q.is_cuda else DENSE_CHUNK_BYTES
    windows_per_chunk = max(1, budget // (WINDOW_SIZE * lk * 4))
    out = torch.zeros_like(q)
    for head in range(num_heads):
        channels = slice(head * head_dim, (head + 1) * head_dim)
        k_head = k[:, channels].float()
        v_head = v[:, channels].float()
        for first in range(0, lq // WINDOW_SIZE, windows_per_chunk):
            windows = block_mask[0, head, first : first + windows_per_chunk]
            rows = slice(first * WINDOW_SIZE, (first + windows.shape[0]) * WINDOW_SIZE)
            out[rows, channels] = _attend_chunk(q[rows, channels].float(), k_head, v_head, windows, scale).to(
                q.dtype
            )
    return out


def _attend_chunk(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, windows: torch.Tensor, scale: float
) -> torch.Tensor:
    token_mask = windows.repeat_interleave(WINDOW_SIZE, dim=0).repeat_interleave(WINDOW_SIZE, dim=1)
    scores = (q @ k.T) * scale
    scores.masked_fill_(~token_mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    # Rows without any key are all -inf and come out as NaN; the kernel defines them as zeros.
    empty_rows = ~token_mask.any(dim=1)
    probs[empty_rows] = 0.0
    return probs @ v


def flex_block_sparse_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """Run FlexAttention with a BlockMask, so masked-out 128x128 blocks are skipped, not just masked."""
    # NOTE: the compiled CUDA kernel has not run on a GPU yet. Only the BlockMask is tested, against
    # the dense path with eager FlexAttention on the CPU.
    lq, dim = q.shape
    lk = k.shape[0]
    flex_mask = to_flex_block_mask(block_mask[0], lq, lk)
    q_heads = q.view(1, lq, num_heads, -1).transpose(1, 2)
    k_heads = k.view(1, lk, num_heads, -1).transpose(1, 2)
    v_heads = v.view(1, lk, num_heads, -1).transpose(1, 2)
    out = _flex_attention_fn()(q_heads, k_heads, v_heads, block_mask=flex_mask)
    return out.transpose(1, 2).reshape(lq, dim)


def to_flex_block_mask(head_block_mask: torch.Tensor, q_len: int, kv_len: int):
    """Convert a `[heads, Nq, Nk]` bool block mask into a FlexAttention BlockMask.

    Active blocks are listed as full blocks, which the compiled kernel computes without evaluating
    `mask_mod`, and every other block is skipped. The `mask_mod` still looks each block up, because
    eager FlexAttention ignores the block lists and applies only `mask_mod`.
    """
    if BlockMask is None:
        raise RuntimeError("this torch build has no FlexAttention; install torch 2.5 or newer")
    mask_int = head_block_mask.to(torch.int32)
    full_counts = mask_int.sum(dim=-1).to(torch.int32).unsqueeze(0)
    # A stable descending sort puts the active key blocks first, in ascending order.
    full_indices = torch.argsort(mask_int, dim=-1, descending=True, stable=True).to(torch.int32).unsqueeze(0)
    lookup = head_block_mask

    def mask_mod(batch, head, q_idx, kv_idx):
        return lookup[head, q_idx // WINDOW_SIZE, kv_idx // WINDOW_SIZE]

    return BlockMask.from_kv_blocks(
        torch.zeros_like(full_counts),
        torch.zeros_like(full_indices),
        full_kv_num_blocks=full_counts,
        full_kv_indices=full_indices,
        BLOCK_SIZE=WINDOW_SIZE,
        mask_mod=mask_mod,
        seq_lengths=(q_len, kv_len),
    )


def _flex_attention_fn():
    global _compiled_flex_attention
    if _compiled_flex_attention is None:
        _compiled_flex_attention = torch.compile(flex_attention, dynamic=False)
        logger.info("compiled FlexAttention for block-sparse self-attention")
    return _compiled_flex_attention
