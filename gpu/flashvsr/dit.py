"""The Wan2.1 DiT as FlashVSR runs it: one-step, streaming, with block-sparse self-attention.

Parameter names match the released checkpoint (`patch_embedding`, `blocks.N.self_attn.q`, ...).
The model stores no per-call state. Prompt K/V and the self-attention KV cache live in
`PromptCache` and `KVCache` objects that the pipeline owns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gpu.flashvsr.attention import (
    SparseAttentionSettings,
    block_sparse_attention,
    build_block_mask,
    locality_mask,
)
from gpu.flashvsr.config import WINDOW_FRAMES, WINDOW_TOKENS_HW, DiTConfig
from gpu.flashvsr.rope import apply_rope, rope_frequencies

# Receives named intermediates (for example "mask.layer0") when a caller wants to inspect them.
Observer = Callable[[str, torch.Tensor], None]

# The timestep of the one-step distilled model (sigma 1).
TIMESTEP = 1000.0


class RMSNorm(nn.Module):
    """RMSNorm over the last axis; the statistics are computed in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


def sinusoidal_embedding(dim: int, position: torch.Tensor) -> torch.Tensor:
    """Return `[cos, sin]` features of `position`, computed in float64 and cast to its dtype."""
    half = dim // 2
    exponents = torch.arange(half, dtype=torch.float64, device=position.device).div(half)
    angles = torch.outer(position.to(torch.float64), torch.pow(10000, -exponents))
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).to(position.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def partition_windows(x: torch.Tensor, frames: int, rows: int, cols: int) -> torch.Tensor:
    """Reorder tokens `[1, f*h*w, C]` into windows `[n, 128, C]`: slab, window row, window column."""
    channels = x.shape[-1]
    x = x.view(
        frames // WINDOW_FRAMES,
        WINDOW_FRAMES,
        rows // WINDOW_TOKENS_HW,
        WINDOW_TOKENS_HW,
        cols // WINDOW_TOKENS_HW,
        WINDOW_TOKENS_HW,
        channels,
    )
    x = x.permute(0, 2, 4, 1, 3, 5, 6)
    return x.reshape(-1, WINDOW_FRAMES * WINDOW_TOKENS_HW * WINDOW_TOKENS_HW, channels)


def reverse_windows(windows: torch.Tensor, frames: int, rows: int, cols: int) -> torch.Tensor:
    """Undo `partition_windows`, returning `[1, f*h*w, C]`."""
    channels = windows.shape[-1]
    x = windows.view(
        frames // WINDOW_FRAMES,
        rows // WINDOW_TOKENS_HW,
        cols // WINDOW_TOKENS_HW,
        WINDOW_FRAMES,
        WINDOW_TOKENS_HW,
        WINDOW_TOKENS_HW,
        channels,
    )
    x = x.permute(0, 3, 1, 4, 2, 5, 6)
    return x.reshape(1, frames * rows * cols, channels)


@dataclass
class PromptCache:
    """Constants of a call: time embedding, modulation and every block's cross-attention K/V."""

    t: torch.Tensor
    t_mod: torch.Tensor
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class KVCache:
    """Window-partitioned self-attention K/V per block, oldest slab first."""

    max_slabs: int
    entries: list[tuple[torch.Tensor, torch.Tensor] | None] = field(default_factory=list)

    def get(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.entries[layer] if layer < len(self.entries) else None

    def store(self, layer: int, keys: torch.Tensor, values: torch.Tensor, windows_per_slab: int) -> None:
        """Keep the attended K/V; beyond `max_slabs` exactly one (the oldest) slab is dropped."""
        if keys.shape[0] // windows_per_slab > self.max_slabs:
            keys = keys[windows_per_slab:]
            values = values[windows_per_slab:]
        while len(self.entries) <= layer:
            self.entries.append(None)
        self.entries[layer] = (keys, values)


@dataclass(frozen=True)
class StepGeometry:
    """Token grid of one DiT step and the per-call attention constants."""

    frames: int
    rows: int
    cols: int
    rotations: torch.Tensor
    local_mask: torch.Tensor
    topk: int

    @property
    def windows_per_slab(self) -> int:
        return (self.rows // WINDOW_TOKENS_HW) * (self.cols // WINDOW_TOKENS_HW)

    @property
    def query_slabs(self) -> int:
        return self.frames // WINDOW_FRAMES


class _AttentionProjections(nn.Module):
    """The q, k, v, o projections and q/k RMS norms of one attention layer, under the checkpoint's names."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)


class SelfAttention(_AttentionProjections):
    def forward(
        self,
        x: torch.Tensor,
        geometry: StepGeometry,
        cache: KVCache,
        layer: int,
        observer: Observer | None,
    ) -> torch.Tensor:
        q = apply_rope(self.norm_q(self.q(x)), geometry.rotations, self.num_heads)
        k = apply_rope(self.norm_k(self.k(x)), geometry.rotations, self.num_heads)
        v = self.v(x)

        grid = (geometry.frames, geometry.rows, geometry.cols)
        q_windows = partition_windows(q, *grid)
        k_windows = partition_windows(k, *grid)
        v_windows = partition_windows(v, *grid)
        cached = cache.get(layer)
        if cached is not None:
            k_windows = torch.cat([cached[0], k_windows])
            v_windows = torch.cat([cached[1], v_windows])

        mask = build_block_mask(
            q_windows, k_windows, self.num_heads, geometry.query_slabs, geometry.topk, geometry.local_mask
        )
        if observer is not None:
            observer(f"mask.layer{layer}", mask)
        out = block_sparse_attention(
            q_windows.flatten(0, 1), k_windows.flatten(0, 1), v_windows.flatten(0, 1), mask, self.num_heads
        )
        cache.store(layer, k_windows, v_windows, geometry.windows_per_slab)

        out = reverse_windows(out.view_as(q_windows), *grid)
        return self.o(out)


class CrossAttention(_AttentionProjections):
    def project_context(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.norm_k(self.k(context)), self.v(context)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(self.q(x))
        heads = [t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in (q, keys, values)]
        out = F.scaled_dot_product_attention(*heads)
        return self.o(out.transpose(1, 2).flatten(2))


class DiTBlock(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        dim, eps = config.dim, config.eps
        self.self_attn = SelfAttention(dim, config.num_heads, eps)
        self.cross_attn = CrossAttention(dim, config.num_heads, eps)
        self.norm1 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.norm3 = nn.LayerNorm(dim, eps=eps)
        self.ffn = nn.Sequential(
            nn.Linear(dim, config.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(config.ffn_dim, dim)
        )
        self.modulation = nn.Parameter(torch.zeros(1, 6, dim))

    def forward(
        self,
        x: torch.Tensor,
        t_mod: torch.Tensor,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        geometry: StepGeometry,
        cache: KVCache,
        layer: int,
        observer: Observer | None,
    ) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (self.modulation + t_mod).chunk(
            6, dim=1
        )
        attended = self.self_attn(
            modulate(self.norm1(x), shift_msa, scale_msa), geometry, cache, layer, observer
        )
        x = x + gate_msa * attended
        x = x + self.cross_attn(self.norm3(x), *cross_kv)
        return x + gate_mlp * self.ffn(modulate(self.norm2(x), shift_mlp, scale_mlp))


class Head(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.dim, eps=config.eps, elementwise_affine=False)
        self.head = nn.Linear(config.dim, config.out_dim * math.prod(config.patch_size))
        self.modulation = nn.Parameter(torch.zeros(1, 2, config.dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation + t.unsqueeze(1)).chunk(2, dim=1)
        return self.head(modulate(self.norm(x), shift, scale))


class WanDiT(nn.Module):
    """Wan2.1 text-to-video DiT without the image branch, driven one streaming step at a time."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.patch_embedding = nn.Conv3d(
            config.in_dim, dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.text_embedding = nn.Sequential(
            nn.Linear(config.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(config.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList([DiTBlock(config) for _ in range(config.num_layers)])
        self.head = Head(config)

    @torch.no_grad()
    def prepare_prompt(self, prompt_context: torch.Tensor, observer: Observer | None = None) -> PromptCache:
        """Embed the fixed timestep and the pre-encoded prompt once per call."""
        param = self.patch_embedding.weight
        timestep = torch.tensor([TIMESTEP], dtype=param.dtype, device=param.device)
        t = self.time_embedding(sinusoidal_embedding(self.config.freq_dim, timestep))
        t_mod = self.time_projection(t).unflatten(1, (6, self.config.dim))
        context = self.text_embedding(prompt_context.to(device=param.device, dtype=param.dtype))
        if observer is not None:
            observer("time.t", t)
            observer("time.t_mod", t_mod)
            observer("context_embedded", context)
        cross_kv = [block.cross_attn.project_context(context) for block in self.blocks]
        return PromptCache(t=t, t_mod=t_mod, cross_kv=cross_kv)

    def step_geometry(
        self, latent_shape: Sequence[int], first_frame: int, settings: SparseAttentionSettings
    ) -> StepGeometry:
        """Describe the token grid for latents `[1, C, f, h, w]` whose first frame has index `first_frame`."""
        _, _, frames, height, width = latent_shape
        _, patch_h, patch_w = self.config.patch_size
        rows, cols = height // patch_h, width // patch_w
        if frames % WINDOW_FRAMES or rows % WINDOW_TOKENS_HW or cols % WINDOW_TOKENS_HW:
            raise ValueError(
                f"latent grid {frames}x{height}x{width} does not split into 2x16x16 windows; "
                "frames must be 128-pixel multiples and latent frame counts even"
            )
        device = self.patch_embedding.weight.device
        positions = torch.arange(first_frame, first_frame + frames, device=device)
        windows_per_slab = (rows // WINDOW_TOKENS_HW) * (cols // WINDOW_TOKENS_HW)
        return StepGeometry(
            frames=frames,
            rows=rows,
            cols=cols,
            rotations=rope_frequencies(self.config.head_dim, positions, rows, cols),
            local_mask=locality_mask(
                rows // WINDOW_TOKENS_HW, cols // WINDOW_TOKENS_HW, settings.local_range, device
            ),
            topk=settings.topk(windows_per_slab),
        )

    @torch.no_grad()
    def stream_step(
        self,
        latents: torch.Tensor,
        lq_features: Sequence[torch.Tensor],
        first_frame: int,
        prompt: PromptCache,
        cache: KVCache,
        settings: SparseAttentionSettings,
        observer: Observer | None = None,
    ) -> torch.Tensor:
        """Predict the velocity for noisy latents `[1, 16, f, h, w]`; updates `cache` in place.

        `lq_features[i]` `[1, f*h/2*w/2, dim]` is added to the tokens before block i.
        """
        geometry = self.step_geometry(latents.shape, first_frame, settings)
        x = self.patch_embedding(latents.to(self.patch_embedding.weight.dtype))
        x = x.flatten(2).transpose(1, 2).contiguous()
        for layer, block in enumerate(self.blocks):
            if layer < len(lq_features):
                x = x + lq_features[layer]
            x = block(x, prompt.t_mod, prompt.cross_kv[layer], geometry, cache, layer, observer)
        x = self.head(x, prompt.t)
        return self.unpatchify(x, geometry)

    def unpatchify(self, x: torch.Tensor, geometry: StepGeometry) -> torch.Tensor:
        patch_f, patch_h, patch_w = self.config.patch_size
        x = x.view(1, geometry.frames, geometry.rows, geometry.cols, patch_f, patch_h, patch_w, -1)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(1, -1, geometry.frames * patch_f, geometry.rows * patch_h, geometry.cols * patch_w)
