"""Tiny Conditional Decoder (TCDecoder) of FlashVSR v1.1, used in streaming mode.

The decoder is a TAEHV-style stack of 27 modules that turns 16-channel video latents plus the low-quality
(LQ) input video into RGB frames: x8 in space, x4 in time. Module indices and parameter names match the
release file `TCDecoder.ckpt` (66 tensors), so its state dict loads unchanged.

Streaming contract: each MemBlock receives its own input from the previous time step. That memory is kept
across `decode` calls until `reset()`, so decoding latents in several calls gives the same frames as one
call over all of them. The first call after `reset()` drops its first 3 output frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from gpu.flashvsr.strict_load import load_strict
from gpu.params import ModelError

COND_TIME_FACTOR = 4
COND_SPACE_FACTOR = 8
IMAGE_CHANNELS = 3
COND_CHANNELS = IMAGE_CHANNELS * COND_TIME_FACTOR * COND_SPACE_FACTOR * COND_SPACE_FACTOR
FRAMES_TO_TRIM = 3
STACK_LENGTH = 27

# Indices in the 27-module stack of the convolutions whose output widths are the four stage widths.
STAGE_CONV_INDICES = (1, 10, 16, 22)


@dataclass(frozen=True)
class TCDecoderConfig:
    """Sizes of a TCDecoder: stage widths and input channels (LQ condition first, then latent)."""

    channels: tuple[int, int, int, int]
    cond_channels: int = COND_CHANNELS
    latent_channels: int = 16

    @classmethod
    def release(cls) -> TCDecoderConfig:
        return cls(channels=(512, 256, 128, 128))

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor]) -> TCDecoderConfig:
        """Read the sizes from checkpoint shapes. Raise ModelError when a needed key is missing."""
        keys = [f"decoder.{index}.weight" for index in STAGE_CONV_INDICES]
        missing = [key for key in keys if key not in state_dict]
        if missing:
            raise ModelError(
                "The TCDecoder weights are incomplete. Download the model files again.",
                detail=f"missing key {missing[0]}",
            )
        channels = tuple(int(state_dict[key].shape[0]) for key in keys)
        input_channels = int(state_dict["decoder.1.weight"].shape[1])
        if input_channels <= COND_CHANNELS:
            raise ModelError(
                "The TCDecoder weights have an unexpected layout. Download the model files again.",
                detail=f"decoder.1.weight has {input_channels} input channels, "
                f"expected more than {COND_CHANNELS}",
            )
        return cls(channels=channels, latent_channels=input_channels - COND_CHANNELS)


class Clamp(nn.Module):
    """Soft clamp of the decoder input to (-3, 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class MemBlock(nn.Module):
    """Residual block that also receives its input from the previous time step (`past`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv3x3(channels * 2, channels),
            nn.ReLU(),
            _conv3x3(channels, channels),
            nn.ReLU(),
            _conv3x3(channels, channels),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(torch.cat([x, past], dim=1)) + x)


class TGrow(nn.Module):
    """Temporal upsampling: a 1x1 convolution to `stride` channel groups, group g becoming time offset g."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels * stride, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, channels, height, width = x.shape
        return self.conv(x).reshape(frames * self.stride, channels, height, width)


def _conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


def _build_stack(config: TCDecoderConfig) -> nn.Sequential:
    c0, c1, c2, c3 = config.channels
    modules = [
        Clamp(),
        _conv3x3(config.cond_channels + config.latent_channels, c0),
        nn.ReLU(),
        _conv3x3(c0, c0, bias=False),
        nn.ReLU(),
        MemBlock(c0),
        MemBlock(c0),
        MemBlock(c0),
        nn.Upsample(scale_factor=2),
        TGrow(c0, 1),
        _conv3x3(c0, c1, bias=False),
        MemBlock(c1),
        MemBlock(c1),
        MemBlock(c1),
        nn.Upsample(scale_factor=2),
        TGrow(c1, 2),
        _conv3x3(c1, c2, bias=False),
        MemBlock(c2),
        MemBlock(c2),
        MemBlock(c2),
        nn.Upsample(scale_factor=2),
        TGrow(c2, 2),
        _conv3x3(c2, c3, bias=False),
        nn.ReLU(),
        _conv3x3(c3, c3, bias=False),
        nn.ReLU(),
        _conv3x3(c3, IMAGE_CHANNELS),
    ]
    assert len(modules) == STACK_LENGTH
    return nn.Sequential(*modules)


def pad_and_pack_cond(cond: torch.Tensor) -> torch.Tensor:
    """Turn LQ frames [1, 3, Fc, H, W] into condition features [1, ceil(Fc/4), 768, H/8, W/8].

    Frames are first padded at the front with copies of the first frame up to a multiple of 4. The packed
    channel index is ((c * 4 + df) * 8 + dy) * 8 + dx for colour c, frame offset df and pixel offset dy, dx.
    """
    frame_count = cond.shape[2]
    remainder = frame_count % COND_TIME_FACTOR
    if remainder:
        first_copies = cond[:, :, :1].expand(-1, -1, COND_TIME_FACTOR - remainder, -1, -1)
        cond = torch.cat([first_copies, cond], dim=2)
    return rearrange(
        cond,
        "b c (f df) (h dy) (w dx) -> b f (c df dy dx) h w",
        df=COND_TIME_FACTOR,
        dy=COND_SPACE_FACTOR,
        dx=COND_SPACE_FACTOR,
    )


class TCDecoder(nn.Module):
    """Streaming Tiny Conditional Decoder that keeps MemBlock memory between `decode` calls."""

    def __init__(self, config: TCDecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.decoder = _build_stack(config)
        self._memory: dict[int, torch.Tensor] = {}

    def reset(self) -> None:
        """Forget all MemBlock memory, so the next `decode` starts a new video and trims 3 frames."""
        self._memory = {}

    @torch.no_grad()
    def decode(
        self, latents: torch.Tensor, cond: torch.Tensor, latent_frames_per_pass: int = 1
    ) -> torch.Tensor:
        """Decode latents [1, 16, t, h, w] with LQ frames cond [1, 3, Fc, 8h, 8w] (values in [-1, 1]).

        Returns frames [1, 3, T, 8h, 8w], mapped as x * 2 - 1 but not clamped, in the weights' dtype.
        T is 4t - 3 on the first call after `reset()` and 4t after that. Fc, padded at the front to a
        multiple of 4, must equal 4t. `latent_frames_per_pass` bounds memory: the stack runs on that
        many latent frames at a time, and any grouping gives the same frames up to float rounding.
        """
        _check_decode_inputs(self.config, latents, cond)
        if latent_frames_per_pass < 1:
            raise ValueError(f"latent_frames_per_pass must be at least 1, got {latent_frames_per_pass}")
        weight = self.decoder[1].weight
        packed_cond = pad_and_pack_cond(cond.to(device=weight.device, dtype=weight.dtype))
        latent_frames = latents.to(device=weight.device, dtype=weight.dtype).transpose(1, 2)
        stack_input = torch.cat([packed_cond, latent_frames], dim=2)[0]

        is_first_call = not self._memory
        outputs = [
            self._run_stack(stack_input[start : start + latent_frames_per_pass])
            for start in range(0, stack_input.shape[0], latent_frames_per_pass)
        ]
        frames = torch.cat(outputs, dim=0)
        if is_first_call:
            frames = frames[FRAMES_TO_TRIM:]
        return (frames.transpose(0, 1).unsqueeze(0)) * 2 - 1

    def _run_stack(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stack on frames [T, C, h, w] in time order, updating MemBlock memory."""
        for index, block in enumerate(self.decoder):
            if isinstance(block, MemBlock):
                past = self._memory.get(index)
                if past is None:
                    past = torch.zeros_like(x[:1])
                self._memory[index] = x[-1:].clone()
                x = block(x, torch.cat([past, x[:-1]], dim=0))
            else:
                x = block(x)
        return x

    def load_checkpoint_state_dict(self, state_dict: dict[str, torch.Tensor], source: str) -> None:
        """Load a `TCDecoder.ckpt` state dict strictly. `source` names the file in error messages."""
        load_strict(self, state_dict, source)


def _check_decode_inputs(config: TCDecoderConfig, latents: torch.Tensor, cond: torch.Tensor) -> None:
    if latents.ndim != 5 or latents.shape[0] != 1 or latents.shape[1] != config.latent_channels:
        raise ValueError(
            f"latents must have shape [1, {config.latent_channels}, t, h, w], got {list(latents.shape)}"
        )
    if cond.ndim != 5 or cond.shape[0] != 1 or cond.shape[1] != IMAGE_CHANNELS:
        raise ValueError(f"cond must have shape [1, 3, frames, height, width], got {list(cond.shape)}")
    _, _, latent_count, height, width = latents.shape
    expected_size = (height * COND_SPACE_FACTOR, width * COND_SPACE_FACTOR)
    if tuple(cond.shape[3:]) != expected_size:
        raise ValueError(
            f"cond frames must be {expected_size[0]}x{expected_size[1]} (8x the latent size), "
            f"got {cond.shape[3]}x{cond.shape[4]}"
        )
    padded_count = -(-cond.shape[2] // COND_TIME_FACTOR) * COND_TIME_FACTOR
    if padded_count != latent_count * COND_TIME_FACTOR:
        raise ValueError(
            f"{latent_count} latent frames need {latent_count * COND_TIME_FACTOR - 3} to "
            f"{latent_count * COND_TIME_FACTOR} cond frames, got {cond.shape[2]}"
        )
