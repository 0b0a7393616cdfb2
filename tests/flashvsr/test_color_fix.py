"""AdaIN and wavelet colour fixes on synthetic frames [B, 3, T, H, W]."""

from __future__ import annotations

import pytest
import torch

from gpu.flashvsr.color_fix import adain_color_fix, apply_color_fix, wavelet_color_fix

# Pixels this far from the border see no replicate padding through five blur levels (1+2+4+8+16 each side).
WAVELET_MARGIN = 31


def channel_stats(video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return per-frame, per-channel mean and population std, each shaped [B, 3, T]."""
    flat = video.double().flatten(3)
    return flat.mean(dim=3), flat.std(dim=3, unbiased=False)


def checkerboard(height: int, width: int, amplitude: float) -> torch.Tensor:
    rows = torch.arange(height)[:, None]
    cols = torch.arange(width)[None, :]
    return ((rows + cols) % 2 * 2 - 1).float() * amplitude


def test_adain_matches_lq_stats_per_frame():
    generator = torch.Generator().manual_seed(0)
    hq = torch.randn(1, 3, 4, 32, 48, generator=generator) * 0.3 + 0.1
    lq = torch.randn(1, 3, 4, 32, 48, generator=generator) * 0.05
    lq += torch.tensor([0.2, -0.3, 0.0, 0.4]).view(1, 1, 4, 1, 1)
    lq *= torch.tensor([1.0, 1.5, 0.5]).view(1, 3, 1, 1, 1)

    output = adain_color_fix(hq, lq)
    output_mean, output_std = channel_stats(output)
    lq_mean, lq_std = channel_stats(lq)

    assert output.shape == hq.shape
    assert torch.allclose(output_mean, lq_mean, atol=1e-6)
    assert torch.allclose(output_std, lq_std, rtol=1e-2)


def test_adain_keeps_hq_pattern():
    generator = torch.Generator().manual_seed(1)
    hq = torch.randn(1, 3, 2, 16, 16, generator=generator) * 0.1
    lq = hq * 2 + 0.1
    output = adain_color_fix(hq, lq)
    assert torch.allclose(output, lq, atol=1e-3)


def test_adain_clamps_to_unit_range():
    generator = torch.Generator().manual_seed(2)
    hq = torch.randn(1, 3, 2, 16, 16, generator=generator)
    lq = torch.randn(1, 3, 2, 16, 16, generator=generator) * 3
    output = adain_color_fix(hq, lq)
    assert output.min().item() == -1.0
    assert output.max().item() == 1.0


def test_adain_constant_frame_is_finite():
    hq = torch.full((1, 3, 1, 8, 8), 0.5)
    lq = torch.full((1, 3, 1, 8, 8), -0.25)
    output = adain_color_fix(hq, lq)
    assert torch.allclose(output, lq)


def test_wavelet_of_identical_inputs_is_identity():
    generator = torch.Generator().manual_seed(3)
    video = torch.rand(1, 3, 3, 64, 80, generator=generator) * 1.6 - 0.8
    assert torch.allclose(wavelet_color_fix(video, video), video, atol=1e-6)


def test_wavelet_takes_low_frequencies_from_lq():
    rows = torch.linspace(-0.5, 0.5, 128)[:, None]
    cols = torch.linspace(-0.3, 0.3, 96)[None, :]
    smooth = (rows + cols).expand(1, 3, 2, 128, 96)
    flat_hq = torch.full((1, 3, 2, 128, 96), 0.7)

    output = wavelet_color_fix(flat_hq, smooth)

    inner = (..., slice(WAVELET_MARGIN, -WAVELET_MARGIN), slice(WAVELET_MARGIN, -WAVELET_MARGIN))
    assert torch.allclose(output[inner], smooth[inner], atol=1e-5)


def test_wavelet_takes_high_frequencies_from_hq():
    pattern = checkerboard(96, 96, 0.2).expand(1, 3, 2, 96, 96)
    lq = torch.full((1, 3, 2, 96, 96), -0.1)

    output = wavelet_color_fix(pattern, lq)

    inner = (..., slice(WAVELET_MARGIN, -WAVELET_MARGIN), slice(WAVELET_MARGIN, -WAVELET_MARGIN))
    assert torch.allclose(output[inner], pattern[inner] - 0.1, atol=1e-5)


def test_wavelet_clamps_to_unit_range():
    pattern = checkerboard(64, 64, 0.9).expand(1, 3, 1, 64, 64)
    lq = torch.full((1, 3, 1, 64, 64), 0.8)
    output = wavelet_color_fix(pattern, lq)
    assert output.max().item() == 1.0
    assert output.min().item() >= -1.0


@pytest.mark.parametrize("fix", [adain_color_fix, wavelet_color_fix])
def test_color_fix_rejects_shape_mismatch(fix):
    with pytest.raises(ValueError, match="same shape"):
        fix(torch.zeros(1, 3, 2, 16, 16), torch.zeros(1, 3, 3, 16, 16))


@pytest.mark.parametrize("fix", [adain_color_fix, wavelet_color_fix])
def test_color_fix_rejects_frame_first_layout(fix):
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        fix(torch.zeros(2, 4, 3, 16, 16), torch.zeros(2, 4, 3, 16, 16))


def test_apply_color_fix_dispatches():
    generator = torch.Generator().manual_seed(4)
    hq = torch.rand(1, 3, 2, 16, 16, generator=generator) - 0.5
    lq = torch.rand(1, 3, 2, 16, 16, generator=generator) - 0.5
    assert torch.equal(apply_color_fix("adain", hq, lq), adain_color_fix(hq, lq))
    assert torch.equal(apply_color_fix("wavelet", hq, lq), wavelet_color_fix(hq, lq))
    assert apply_color_fix("none", hq, lq) is hq
    with pytest.raises(ValueError, match="unknown colour fix method 'median'"):
        apply_color_fix("median", hq, lq)
