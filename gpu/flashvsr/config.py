"""Model dimensions of the FlashVSR v1.1 DiT and LQ projector, read from checkpoint shapes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

# Token window of the sparse attention: 2 latent frames x 8 x 8 tokens = 128 tokens,
# which is one 128x128-pixel tile over 8 video frames.
WINDOW_FRAMES = 2
WINDOW_TOKENS_HW = 8
WINDOW_SIZE = WINDOW_FRAMES * WINDOW_TOKENS_HW * WINDOW_TOKENS_HW
# Output pixels per window side (8 tokens x 2-pixel patches x 8-pixel latents).
WINDOW_PIXELS = 128

RELEASE_HEAD_DIM = 128
REDUCED_HEAD_DIM = 32


def head_dim_for(dim: int) -> int:
    """Return the per-head width for a DiT of width `dim`.

    Checkpoints do not store the head count. Wan2.1 uses 128-wide heads, so any width that is a
    multiple of 128 is read that way (1536 gives 12 heads). Smaller test models use 32-wide heads
    (64 gives 2 heads). RoPE splits a head into temporal, row and column parts, which works for 32
    and 128 but not for 16 or 64.
    """
    if dim >= RELEASE_HEAD_DIM and dim % RELEASE_HEAD_DIM == 0:
        return RELEASE_HEAD_DIM
    if dim % REDUCED_HEAD_DIM == 0:
        return REDUCED_HEAD_DIM
    raise ValueError(f"DiT width {dim} is not a multiple of 32, so no supported head width divides it")


def _count_indexed(state_dict: Mapping[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    indices = {int(m.group(1)) for key in state_dict if (m := regex.fullmatch(key))}
    return len(indices)


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise KeyError(f"{source}: missing key {key!r}, needed to read the model size")
    return tuple(state_dict[key].shape)


@dataclass(frozen=True)
class DiTConfig:
    """Dimensions of the Wan2.1 DiT as used by FlashVSR."""

    dim: int
    in_dim: int
    out_dim: int
    ffn_dim: int
    text_dim: int
    freq_dim: int
    num_heads: int
    num_layers: int
    patch_size: tuple[int, int, int] = (1, 2, 2)
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"DiT width {self.dim} is not divisible by {self.num_heads} heads")
        head_dim = self.head_dim
        temporal = head_dim - 2 * (head_dim // 3)
        if head_dim % 2 or temporal % 2 or (head_dim // 3) % 2:
            raise ValueError(
                f"head width {head_dim} cannot be split into even temporal, row and column RoPE parts"
            )

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], num_heads: int | None = None, source: str = "DiT"
    ) -> DiTConfig:
        """Read the sizes from tensor shapes; `num_heads` defaults to `dim // head_dim_for(dim)`."""
        dim, in_dim, *patch = _shape(state_dict, "patch_embedding.weight", source)
        head_out = _shape(state_dict, "head.head.weight", source)[0]
        num_layers = _count_indexed(state_dict, r"blocks\.(\d+)\.modulation")
        if num_layers == 0:
            raise KeyError(f"{source}: no blocks.N.modulation keys, so this is not a Wan DiT state dict")
        return cls(
            dim=dim,
            in_dim=in_dim,
            out_dim=head_out // math.prod(patch),
            ffn_dim=_shape(state_dict, "blocks.0.ffn.0.weight", source)[0],
            text_dim=_shape(state_dict, "text_embedding.0.weight", source)[1],
            freq_dim=_shape(state_dict, "time_embedding.0.weight", source)[1],
            num_heads=num_heads if num_heads is not None else dim // head_dim_for(dim),
            num_layers=num_layers,
            patch_size=tuple(patch),
        )


@dataclass(frozen=True)
class LQProjConfig:
    """Dimensions of Causal_LQ4x_Proj: space-to-depth 16x16, two causal convs, per-layer linears."""

    in_dim: int = 3
    hidden_dim1: int = 2048
    hidden_dim2: int = 3072
    out_dim: int = 1536
    layer_num: int = 1
    patch: int = 16

    @property
    def conv1_in(self) -> int:
        return self.in_dim * self.patch * self.patch

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], source: str = "LQ projector"
    ) -> LQProjConfig:
        hidden1, conv1_in, *_ = _shape(state_dict, "conv1.weight", source)
        layer_num = _count_indexed(state_dict, r"linear_layers\.(\d+)\.weight")
        if layer_num == 0:
            raise KeyError(f"{source}: missing key 'linear_layers.0.weight', needed to read the model size")
        patch = 16
        if conv1_in % (patch * patch):
            raise ValueError(f"{source}: conv1 takes {conv1_in} channels, not a multiple of {patch * patch}")
        return cls(
            in_dim=conv1_in // (patch * patch),
            hidden_dim1=hidden1,
            hidden_dim2=_shape(state_dict, "conv2.weight", source)[0],
            out_dim=_shape(state_dict, "linear_layers.0.weight", source)[0],
            layer_num=layer_num,
            patch=patch,
        )


# Wan2.1-T2V-1.3B, the DiT that FlashVSR v1.1 distils.
WAN21_1_3B = DiTConfig(
    dim=1536,
    in_dim=16,
    out_dim=16,
    ffn_dim=8960,
    text_dim=4096,
    freq_dim=256,
    num_heads=12,
    num_layers=30,
)

RELEASE_LQ_PROJ = LQProjConfig()

# Shape of the released pre-encoded prompt (umT5 space).
RELEASE_PROMPT_SHAPE = (1, 512, 4096)
