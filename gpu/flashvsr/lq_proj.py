"""Causal_LQ4x_Proj of FlashVSR v1.1: turns 4-frame LQ clips into DiT tokens, streaming.

Each call takes 4 frames at output resolution `[1, 3, 4, H, W]` in [-1, 1]. Space-to-depth 16x16 gives
768 channels on the DiT token grid. Two causal convolutions (kernel 4x3x3, temporal stride 2) then
reduce 4 frames to one latent frame. The first call of a video prepends 3 copies of its first frame and
only fills the causal caches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gpu.flashvsr.config import LQProjConfig

# Frames of history each causal convolution needs (kernel 4, stride 2).
CAUSAL_HISTORY = 2


class ChannelRMSNorm(nn.Module):
    """L2-normalise over channels, times sqrt(C) and a per-channel gain `gamma` `[C, 1, 1, 1]`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = channels**0.5
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ReplicateCausalConv3d(nn.Conv3d):
    """Conv3d with replicate padding in space and causal history (or replicated frames) in time."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=(4, 3, 3), stride=(2, 1, 1))

    def forward(self, x: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        front = CAUSAL_HISTORY
        if history is not None:
            x = torch.cat([history, x], dim=2)
            front -= history.shape[2]
        x = F.pad(x, (1, 1, 1, 1, front, 0), mode="replicate")
        return super().forward(x)


class CausalLQProjector(nn.Module):
    """Streaming LQ projector; call `reset()` before each video, then `stream_forward` per 4 frames."""

    def __init__(self, config: LQProjConfig) -> None:
        super().__init__()
        self.config = config
        self.conv1 = ReplicateCausalConv3d(config.conv1_in, config.hidden_dim1)
        self.norm1 = ChannelRMSNorm(config.hidden_dim1)
        self.conv2 = ReplicateCausalConv3d(config.hidden_dim1, config.hidden_dim2)
        self.norm2 = ChannelRMSNorm(config.hidden_dim2)
        self.linear_layers = nn.ModuleList(
            [nn.Linear(config.hidden_dim2, config.out_dim) for _ in range(config.layer_num)]
        )
        self.reset()

    def reset(self) -> None:
        self._conv1_history: torch.Tensor | None = None
        self._conv2_history: torch.Tensor | None = None
        self._primed = False

    def space_to_depth(self, clip: torch.Tensor) -> torch.Tensor:
        """`[B, C, T, H, W]` to `[B, C*p*p, T, H/p, W/p]`, channel index `c*p*p + dy*p + dx`."""
        p = self.config.patch
        b, c, t, h, w = clip.shape
        if h % p or w % p:
            raise ValueError(f"LQ frames of {w}x{h} are not multiples of {p} pixels")
        x = clip.view(b, c, t, h // p, p, w // p, p).permute(0, 1, 4, 6, 2, 3, 5)
        return x.reshape(b, c * p * p, t, h // p, w // p)

    @torch.no_grad()
    def stream_forward(self, clip: torch.Tensor) -> list[torch.Tensor] | None:
        """Consume one clip; return one `[1, tokens, out_dim]` tensor per linear layer, or None when priming.

        The first call after `reset()` takes 1 frame; later calls take 4 frames each.
        """
        clip = clip.to(self.conv1.weight.dtype)
        if not self._primed:
            clip = torch.cat([clip[:, :, :1].expand(-1, -1, 3, -1, -1), clip], dim=2)
        x = self.space_to_depth(clip)
        x_history = x[:, :, -CAUSAL_HISTORY:]
        x = F.silu(self.norm1(self.conv1(x, self._conv1_history)))
        self._conv1_history = x_history
        hidden_history = x[:, :, -CAUSAL_HISTORY:]
        if not self._primed:
            self._conv2_history = hidden_history
            self._primed = True
            return None
        x = F.silu(self.norm2(self.conv2(x, self._conv2_history)))
        self._conv2_history = hidden_history
        tokens = x.flatten(2).transpose(1, 2).contiguous()
        return [linear(tokens) for linear in self.linear_layers]
