"""Decoder half of the Wan2.1 video VAE, as the FlashVSR v1.1 Full pipeline uses it.

Only `conv2.*` and `decoder.*` of `Wan2.1_VAE.pth` are needed, with the file's bare key names. Decoding
runs one latent frame at a time, and every causal convolution keeps the last two frames of its input
between frames. The first latent frame gives 1 video frame and each later one gives 4, so t latent frames
give 4t - 3 frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gpu.flashvsr.strict_load import load_strict
from gpu.params import ModelError

logger = logging.getLogger(__name__)

# Per-channel statistics of the Wan2.1 latent space. Decoding maps z to z * std + mean.
# fmt: off
LATENT_MEAN = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)
LATENT_STD = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)
# fmt: on
CACHE_FRAMES = 2
SPATIAL_FACTOR = 8
DECODER_KEY_PREFIXES = ("conv2.", "decoder.")


@dataclass(frozen=True)
class WanVAEDecoderConfig:
    """Sizes of the Wan2.1 VAE decoder: base width `dim`, latent channels and stage layout."""

    dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temporal_upsample: tuple[bool, ...] = (True, True, False)

    @classmethod
    def release(cls) -> WanVAEDecoderConfig:
        return cls()

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor]) -> WanVAEDecoderConfig:
        """Read `dim` and `z_dim` from checkpoint shapes (whole VAE file or its decoder subset)."""
        for key in ("conv2.weight", "decoder.head.0.gamma"):
            if key not in state_dict:
                raise ModelError(
                    "The Wan VAE weights are incomplete. Download the model files again.",
                    detail=f"missing key {key}",
                )
        return cls(
            dim=int(state_dict["decoder.head.0.gamma"].shape[0]),
            z_dim=int(state_dict["conv2.weight"].shape[0]),
        )


class CausalConv3d(nn.Conv3d):
    """3-D convolution padded in time on the past side only: with cached frames, then with zeros."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, padding=0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0)
        time_pad, height_pad, width_pad = _triple(padding)
        self.past_frames = 2 * time_pad
        self.spatial_padding = (width_pad, width_pad, height_pad, height_pad)

    def forward(self, x: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        zero_frames = self.past_frames
        if past is not None and zero_frames > 0:
            x = torch.cat([past, x], dim=2)
            zero_frames -= past.shape[2]
        return super().forward(F.pad(x, (*self.spatial_padding, zero_frames, 0)))


def _triple(value) -> tuple[int, int, int]:
    return tuple(value) if isinstance(value, tuple) else (value, value, value)


class FrameCache:
    """Past input frames of each causal convolution while one video is decoded frame by frame."""

    FIRST_FRAME = "first_frame"

    def __init__(self) -> None:
        self.entries: dict[nn.Module, torch.Tensor | str] = {}

    def run_conv(self, conv: CausalConv3d, x: torch.Tensor) -> torch.Tensor:
        """Apply `conv` to x with its cached past, then cache the last two input frames."""
        past = self.entries.get(conv)
        tail = x[:, :, -CACHE_FRAMES:].clone()
        if tail.shape[2] < CACHE_FRAMES and past is not None:
            tail = torch.cat([past[:, :, -1:], tail], dim=2)
        output = conv(x, past)
        self.entries[conv] = tail
        return output


class RMSNorm(nn.Module):
    """L2 normalisation over channels, scaled by sqrt(channels) and a learned per-channel `gamma`."""

    def __init__(self, channels: int, spatial_dims: int) -> None:
        super().__init__()
        self.scale = channels**0.5
        self.gamma = nn.Parameter(torch.ones(channels, *([1] * spatial_dims)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            RMSNorm(in_channels, 3),
            nn.SiLU(),
            CausalConv3d(in_channels, out_channels, 3, padding=1),
            RMSNorm(out_channels, 3),
            nn.SiLU(),
            nn.Dropout(0.0),
            CausalConv3d(out_channels, out_channels, 3, padding=1),
        )
        self.shortcut = CausalConv3d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, cache: FrameCache) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        for layer in self.residual:
            x = cache.run_conv(layer, x) if isinstance(layer, CausalConv3d) else layer(x)
        return x + shortcut


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame, with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = RMSNorm(channels, 2)
        self.to_qkv = nn.Conv2d(channels, channels * 3, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, cache: FrameCache) -> torch.Tensor:
        batch, channels, frames, height, width = x.shape
        per_frame = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        qkv = self.to_qkv(self.norm(per_frame)).reshape(batch * frames, 1, channels * 3, height * width)
        query, key, value = qkv.permute(0, 1, 3, 2).contiguous().chunk(3, dim=-1)
        attended = F.scaled_dot_product_attention(query, key, value)
        attended = attended.squeeze(1).permute(0, 2, 1).reshape(batch * frames, channels, height, width)
        output = self.proj(attended).reshape(batch, frames, channels, height, width).transpose(1, 2)
        return output + x


class Upsample2x(nn.Upsample):
    """Nearest-exact x2 spatial upsampling through float32, as in the original code (copying is exact)."""

    def __init__(self) -> None:
        super().__init__(scale_factor=(2.0, 2.0), mode="nearest-exact")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type_as(x)


class Resample(nn.Module):
    """x2 spatial upsampling that halves the channels, optionally preceded by x2 temporal upsampling."""

    def __init__(self, channels: int, temporal: bool) -> None:
        super().__init__()
        self.resample = nn.Sequential(Upsample2x(), nn.Conv2d(channels, channels // 2, 3, padding=1))
        self.time_conv = (
            CausalConv3d(channels, channels * 2, (3, 1, 1), padding=(1, 0, 0)) if temporal else None
        )

    def forward(self, x: torch.Tensor, cache: FrameCache) -> torch.Tensor:
        if self.time_conv is not None:
            x = self._upsample_time(x, cache)
        batch, channels, frames, height, width = x.shape
        per_frame = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        per_frame = self.resample(per_frame)
        return per_frame.reshape(batch, frames, *per_frame.shape[1:]).transpose(1, 2)

    def _upsample_time(self, x: torch.Tensor, cache: FrameCache) -> torch.Tensor:
        # The first latent frame passes through without temporal upsampling. On the next one the time
        # convolution pads with zeros (not with the first frame), as the original Wan2.1 code does.
        past = cache.entries.get(self.time_conv)
        if past is None:
            cache.entries[self.time_conv] = FrameCache.FIRST_FRAME
            return x
        tail = x[:, :, -CACHE_FRAMES:].clone()
        if tail.shape[2] < CACHE_FRAMES:
            previous = torch.zeros_like(tail) if past is FrameCache.FIRST_FRAME else past[:, :, -1:]
            tail = torch.cat([previous, tail], dim=2)
        doubled = self.time_conv(x, None if past is FrameCache.FIRST_FRAME else past)
        cache.entries[self.time_conv] = tail

        batch, channels, frames, height, width = x.shape
        doubled = doubled.reshape(batch, 2, channels, frames, height, width)
        return torch.stack((doubled[:, 0], doubled[:, 1]), dim=3).reshape(
            batch, channels, frames * 2, height, width
        )


class Decoder3d(nn.Module):
    def __init__(self, config: WanVAEDecoderConfig) -> None:
        super().__init__()
        mults = config.dim_mult
        widths = [config.dim * m for m in (mults[-1], *mults[::-1])]
        self.conv1 = CausalConv3d(config.z_dim, widths[0], 3, padding=1)
        self.middle = nn.Sequential(
            ResidualBlock(widths[0], widths[0]),
            AttentionBlock(widths[0]),
            ResidualBlock(widths[0], widths[0]),
        )
        self.upsamples = nn.Sequential(*_build_upsamples(config, widths))
        self.head = nn.Sequential(
            RMSNorm(widths[-1], 3), nn.SiLU(), CausalConv3d(widths[-1], 3, 3, padding=1)
        )

    def forward(self, x: torch.Tensor, cache: FrameCache) -> torch.Tensor:
        x = cache.run_conv(self.conv1, x)
        for block in (*self.middle, *self.upsamples):
            x = block(x, cache)
        x = self.head[1](self.head[0](x))
        return cache.run_conv(self.head[2], x)


def _build_upsamples(config: WanVAEDecoderConfig, widths: list[int]) -> list[nn.Module]:
    blocks: list[nn.Module] = []
    for stage, out_width in enumerate(widths[1:]):
        # Every Resample halves the channels, so later stages start from half the previous width.
        in_width = widths[stage] if stage == 0 else widths[stage] // 2
        for _ in range(config.num_res_blocks + 1):
            blocks.append(ResidualBlock(in_width, out_width))
            in_width = out_width
        if stage != len(config.dim_mult) - 1:
            blocks.append(Resample(out_width, temporal=config.temporal_upsample[stage]))
    return blocks


class WanVAEDecoder(nn.Module):
    """`conv2` plus the Wan2.1 VAE decoder; parameter names match the bare keys of `Wan2.1_VAE.pth`."""

    def __init__(self, config: WanVAEDecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.conv2 = CausalConv3d(config.z_dim, config.z_dim, 1)
        self.decoder = Decoder3d(config)

    @torch.no_grad()
    def decode(
        self,
        latents: torch.Tensor,
        tiled: bool = False,
        tile_size: tuple[int, int] = (60, 104),
        tile_stride: tuple[int, int] = (30, 52),
        output_device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Decode normalised latents [1, z_dim, t, h, w] to frames [1, 3, 4t - 3, 8h, 8w] clamped to [-1, 1].

        With `tiled`, overlapping tiles of `tile_size` latent pixels, `tile_stride` apart, are decoded
        separately and blended with linear ramps. Frames are returned on `output_device` (default: the
        device of the latents) in the weights' dtype.
        """
        _check_latents(self.config, latents)
        output_device = latents.device if output_device is None else torch.device(output_device)
        if tiled:
            _check_tiling(tile_size, tile_stride)
            frames = self._decode_tiled(latents, tile_size, tile_stride, output_device)
        else:
            frames = torch.cat(list(self.iter_decode(latents, output_device)), dim=2)
        return frames.clamp_(-1, 1)

    @torch.no_grad()
    def iter_decode(
        self, latents: torch.Tensor, output_device: torch.device | str | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield unclamped frames [1, 3, n, 8h, 8w] per latent frame: n is 1 for the first, then 4."""
        _check_latents(self.config, latents)
        output_device = latents.device if output_device is None else torch.device(output_device)
        weight = self.conv2.weight
        latents = latents.to(device=weight.device, dtype=weight.dtype)
        x = self.conv2(denormalize_latents(latents))
        cache = FrameCache()
        for index in range(x.shape[2]):
            yield self.decoder(x[:, :, index : index + 1], cache).to(output_device)

    def _decode_tiled(
        self,
        latents: torch.Tensor,
        tile_size: tuple[int, int],
        tile_stride: tuple[int, int],
        output_device: torch.device,
    ) -> torch.Tensor:
        # NOTE: tile layout and blending follow the original code, but no reference output of a tiled
        # decode exists, so only the blending arithmetic is tested, not agreement with the original.
        _, _, latent_frames, height, width = latents.shape
        dtype = self.conv2.weight.dtype
        out_shape = (latent_frames * 4 - 3, height * SPATIAL_FACTOR, width * SPATIAL_FACTOR)
        values = torch.zeros((1, 3, *out_shape), dtype=dtype, device=output_device)
        weights = torch.zeros((1, 1, *out_shape), dtype=dtype, device=output_device)
        ramp_widths = tuple(
            (size - stride) * SPATIAL_FACTOR for size, stride in zip(tile_size, tile_stride, strict=True)
        )

        for top, bottom, left, right in tile_boxes((height, width), tile_size, tile_stride):
            tile = torch.cat(
                list(self.iter_decode(latents[:, :, :, top:bottom, left:right], output_device)), 2
            )
            borders = (top == 0, bottom >= height, left == 0, right >= width)
            mask = blend_mask(tile.shape[3:], borders, ramp_widths).to(dtype=dtype, device=output_device)
            rows = slice(top * SPATIAL_FACTOR, top * SPATIAL_FACTOR + tile.shape[3])
            cols = slice(left * SPATIAL_FACTOR, left * SPATIAL_FACTOR + tile.shape[4])
            values[:, :, :, rows, cols] += tile * mask
            weights[:, :, :, rows, cols] += mask
        return values / weights

    def load_checkpoint_state_dict(self, file_state_dict: dict[str, torch.Tensor], source: str) -> None:
        """Load the `conv2.`/`decoder.` part of a `Wan2.1_VAE.pth` state dict strictly."""
        load_strict(self, select_decoder_state_dict(file_state_dict), source)


def select_decoder_state_dict(file_state_dict: dict) -> dict[str, torch.Tensor]:
    """Return the `conv2.*` and `decoder.*` entries, unwrapping a `model_state` wrapper if present."""
    state_dict = file_state_dict.get("model_state", file_state_dict)
    return {key: value for key, value in state_dict.items() if key.startswith(DECODER_KEY_PREFIXES)}


def denormalize_latents(latents: torch.Tensor) -> torch.Tensor:
    """Map normalised latents back to VAE space per channel: z / (1 / std) + mean.

    Dividing by the float32 reciprocal, instead of multiplying by std, reproduces the original rounding.
    """
    shape = (1, -1, 1, 1, 1)
    inverse_std = 1.0 / torch.tensor(LATENT_STD, dtype=torch.float32)
    inverse_std = inverse_std.to(device=latents.device, dtype=latents.dtype).view(shape)
    mean = torch.tensor(LATENT_MEAN, dtype=torch.float32).to(device=latents.device, dtype=latents.dtype)
    return latents / inverse_std + mean.view(shape)


def tile_boxes(
    size: tuple[int, int], tile_size: tuple[int, int], tile_stride: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """List (top, bottom, left, right) latent boxes covering `size`. A box may end past the edge."""
    height, width = size
    rows = _tile_starts(height, tile_size[0], tile_stride[0])
    cols = _tile_starts(width, tile_size[1], tile_stride[1])
    return [(top, top + tile_size[0], left, left + tile_size[1]) for top in rows for left in cols]


def _tile_starts(length: int, size: int, stride: int) -> list[int]:
    # A start is skipped when the tile before it already reaches the end.
    return [
        start
        for start in range(0, length, stride)
        if not (start >= stride and start - stride + size >= length)
    ]


def blend_mask(
    tile_shape: tuple[int, int], borders: tuple[bool, bool, bool, bool], ramp_widths: tuple[int, int]
) -> torch.Tensor:
    """Build a [1, 1, 1, H, W] weight that ramps up linearly over `ramp_widths` pixels on inner sides.

    `borders` states, for top, bottom, left and right, whether that side lies on the image border, where
    no ramp is applied. The weight is the minimum of the row and column ramps.
    """
    rows = _ramp_1d(tile_shape[0], borders[0], borders[1], ramp_widths[0])
    cols = _ramp_1d(tile_shape[1], borders[2], borders[3], ramp_widths[1])
    mask = torch.minimum(rows[:, None].expand(-1, len(cols)), cols[None, :].expand(len(rows), -1))
    return mask.view(1, 1, 1, *mask.shape)


def _ramp_1d(length: int, start_is_border: bool, end_is_border: bool, ramp_width: int) -> torch.Tensor:
    weight = torch.ones(length)
    ramp = (torch.arange(ramp_width) + 1) / ramp_width
    if not start_is_border:
        weight[:ramp_width] = ramp
    if not end_is_border:
        weight[-ramp_width:] = ramp.flip(0)
    return weight


def _check_latents(config: WanVAEDecoderConfig, latents: torch.Tensor) -> None:
    if latents.ndim != 5 or latents.shape[0] != 1 or latents.shape[1] != config.z_dim:
        raise ValueError(f"latents must have shape [1, {config.z_dim}, t, h, w], got {list(latents.shape)}")
    if latents.shape[2] < 1:
        raise ValueError("latents must contain at least one frame")


def _check_tiling(tile_size: tuple[int, int], tile_stride: tuple[int, int]) -> None:
    for size, stride in zip(tile_size, tile_stride, strict=True):
        if not 0 < stride <= size:
            raise ValueError(
                f"tile stride {tuple(tile_stride)} must be positive and at most "
                f"the tile size {tuple(tile_size)}"
            )
