"""Colour correction of upscaled frames against the low-quality (LQ) input, as in FlashVSR v1.1.

Both functions take `hq` and `lq` of the same shape [B, 3, T, H, W] with values in [-1, 1], where `lq` is
the LQ video already resized to the output size. Frame i of `hq` is matched with frame i of `lq`, and the
result is clamped to [-1, 1] in the same layout and dtype. Errors propagate to the caller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

COLOR_FIX_METHODS = ("adain", "wavelet", "none")
VARIANCE_EPSILON = 1e-5
WAVELET_LEVELS = 5


def apply_color_fix(method: str, hq: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """Apply the colour fix named `method` ("adain", "wavelet" or "none"; "none" returns hq unchanged)."""
    if method == "adain":
        return adain_color_fix(hq, lq)
    if method == "wavelet":
        return wavelet_color_fix(hq, lq)
    if method == "none":
        return hq
    raise ValueError(f"unknown colour fix method {method!r}, expected one of {', '.join(COLOR_FIX_METHODS)}")


def adain_color_fix(hq: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """Give each frame and channel of hq the mean and standard deviation of lq.

    Statistics are taken over H x W with the population variance plus 1e-5.
    """
    hq_frames, lq_frames = _to_frames(hq, lq)
    hq_mean, hq_std = _mean_std(hq_frames)
    lq_mean, lq_std = _mean_std(lq_frames)
    fixed = (hq_frames - hq_mean) / hq_std * lq_std + lq_mean
    return _from_frames(fixed.clamp(-1, 1), hq.shape)


def wavelet_color_fix(hq: torch.Tensor, lq: torch.Tensor, levels: int = WAVELET_LEVELS) -> torch.Tensor:
    """Combine the high-frequency detail of hq with the low-frequency colour of lq.

    Each level blurs with the 3x3 kernel [[1,2,1],[2,4,2],[1,2,1]] / 16, dilated by 1, 2, 4, ... and with
    replicate padding. The detail is the sum of what each blur removed, and the colour is the last blur.
    """
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    hq_frames, lq_frames = _to_frames(hq, lq)
    hq_detail, _ = _wavelet_decompose(hq_frames, levels)
    _, lq_colour = _wavelet_decompose(lq_frames, levels)
    return _from_frames((hq_detail + lq_colour).clamp(-1, 1), hq.shape)


def _to_frames(hq: torch.Tensor, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if hq.shape != lq.shape:
        raise ValueError(f"hq and lq must have the same shape, got {list(hq.shape)} and {list(lq.shape)}")
    if hq.ndim != 5 or hq.shape[1] != 3:
        raise ValueError(f"colour fix expects frames [B, 3, T, H, W], got {list(hq.shape)}")
    return _flatten_time(hq), _flatten_time(lq.to(device=hq.device, dtype=hq.dtype))


def _flatten_time(video: torch.Tensor) -> torch.Tensor:
    batch, channels, frames, height, width = video.shape
    return video.transpose(1, 2).reshape(batch * frames, channels, height, width)


def _from_frames(frames: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    batch, channels, count, height, width = shape
    return frames.reshape(batch, count, channels, height, width).transpose(1, 2)


def _mean_std(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = frames.flatten(2)
    variance = flat.var(dim=2, unbiased=False) + VARIANCE_EPSILON
    return flat.mean(dim=2)[..., None, None], variance.sqrt()[..., None, None]


def _wavelet_decompose(frames: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    detail = torch.zeros_like(frames)
    low = frames
    for level in range(levels):
        blurred = _wavelet_blur(low, radius=2**level)
        detail = detail + (low - blurred)
        low = blurred
    return detail, low


def _wavelet_blur(frames: torch.Tensor, radius: int) -> torch.Tensor:
    channels = frames.shape[1]
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=frames.dtype) / 16
    kernel = kernel.to(frames.device).expand(channels, 1, 3, 3)
    padded = F.pad(frames, (radius, radius, radius, radius), mode="replicate")
    return F.conv2d(padded, kernel, dilation=radius, groups=channels)
