"""TCDecoder and Wan VAE decoder: conformance case A outputs, streaming, tiling and strict loading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gpu.flashvsr.color_fix import adain_color_fix
from gpu.flashvsr.strict_load import WeightLoadError, load_strict
from gpu.flashvsr.tc_decoder import TCDecoder, TCDecoderConfig
from gpu.flashvsr.wan_vae import (
    WanVAEDecoder,
    WanVAEDecoderConfig,
    blend_mask,
    select_decoder_state_dict,
    tile_boxes,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CASE_DIR = (
    Path(os.environ.get("FLASHVSR_CONFORMANCE_DIR", REPO_ROOT.parent / "shared" / "conformance")) / "case-a"
)

# About ten times the drift measured between two equivalent float32 implementations of case A.
DECODER_TOLERANCE = 5e-5
OUTPUT_TOLERANCE = 1e-4
# Each frame has 256x384x3 values. Float noise of 1e-6 may flip a truncated uint8 value by one.
MAX_UINT8_FLIPS = 100

# Tiny-Long decodes per DiT step: (latent frames, LQ condition frames).
TINY_LONG_STEPS = ((slice(0, 6), slice(0, 21)), (slice(6, 8), slice(21, 29)), (slice(8, 10), slice(29, 37)))


def pool8(x: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = x.shape
    return x.double().reshape(b, c, t, h // 8, 8, w // 8, 8).mean(dim=(4, 6)).float()


def to_uint8(frame: torch.Tensor) -> torch.Tensor:
    """Convert one frame [3, H, W] in [-1, 1] to [H, W, 3] uint8, truncating like the official scripts."""
    return ((frame + 1) * 127.5).clip(0, 255).to(torch.uint8).permute(1, 2, 0)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def case():
    if not (CASE_DIR / "expected.safetensors").is_file():
        pytest.skip(f"conformance case not found at {CASE_DIR}; set FLASHVSR_CONFORMANCE_DIR")
    inputs = load_file(CASE_DIR / "inputs.safetensors")
    expected = load_file(CASE_DIR / "expected.safetensors")
    latents = torch.cat([expected[f"step{k}.latents"] for k in range(3)], dim=2)
    lq_video = inputs["lq_video_uint8"].to(torch.float32) / 255.0 * 2.0 - 1.0
    return {"expected": expected, "latents": latents, "lq": lq_video[:, :, :37]}


@pytest.fixture(scope="module")
def tc_decoder(case):
    state_dict = torch.load(CASE_DIR / "TCDecoder.ckpt", map_location="cpu", weights_only=True)
    decoder = TCDecoder(TCDecoderConfig.from_state_dict(state_dict)).eval()
    decoder.load_checkpoint_state_dict(state_dict, "TCDecoder.ckpt")
    return decoder


@pytest.fixture(scope="module")
def tiny_frames(case, tc_decoder):
    tc_decoder.reset()
    return tc_decoder.decode(case["latents"], case["lq"], latent_frames_per_pass=10)


@pytest.fixture(scope="module")
def vae_decoder(case):
    file_state_dict = torch.load(CASE_DIR / "Wan2.1_VAE.pth", map_location="cpu", weights_only=True)
    decoder = WanVAEDecoder(WanVAEDecoderConfig.from_state_dict(file_state_dict)).eval()
    decoder.load_checkpoint_state_dict(file_state_dict, "Wan2.1_VAE.pth")
    return decoder


@pytest.fixture(scope="module")
def full_frames(case, vae_decoder):
    return vae_decoder.decode(case["latents"])


@pytest.mark.conformance
def test_tc_decoder_config_from_checkpoint(tc_decoder):
    assert tc_decoder.config == TCDecoderConfig(
        channels=(32, 16, 8, 8), cond_channels=768, latent_channels=16
    )
    assert len(tc_decoder.decoder) == 27
    assert len(tc_decoder.state_dict()) == 66


@pytest.mark.conformance
def test_tc_decoder_matches_reference(case, tiny_frames):
    expected = case["expected"]
    assert tiny_frames.shape == (1, 3, 37, 256, 384)
    assert max_abs_diff(pool8(tiny_frames), expected["tiny.decoder_out.pool8"]) < DECODER_TOLERANCE
    assert max_abs_diff(tiny_frames[:, :, 36], expected["tiny.decoder_out.frame36"]) < DECODER_TOLERANCE


@pytest.mark.conformance
def test_tc_decoder_one_frame_per_pass(case, tc_decoder, tiny_frames):
    tc_decoder.reset()
    frames = tc_decoder.decode(case["latents"], case["lq"], latent_frames_per_pass=1)
    assert frames.shape == tiny_frames.shape
    assert max_abs_diff(frames, tiny_frames) < 1e-5


@pytest.mark.conformance
def test_tc_decoder_streaming_equals_one_call(case, tc_decoder, tiny_frames):
    tc_decoder.reset()
    chunks = [
        tc_decoder.decode(case["latents"][:, :, lat], case["lq"][:, :, lq]) for lat, lq in TINY_LONG_STEPS
    ]
    assert [chunk.shape[2] for chunk in chunks] == [21, 8, 8]
    assert max_abs_diff(torch.cat(chunks, dim=2), tiny_frames) < 1e-5


@pytest.mark.conformance
def test_tc_decoder_reset_restarts_video(case, tc_decoder):
    lat, lq = TINY_LONG_STEPS[0]
    tc_decoder.reset()
    first = tc_decoder.decode(case["latents"][:, :, lat], case["lq"][:, :, lq])
    continued = tc_decoder.decode(case["latents"][:, :, lat], case["lq"][:, :, lq])
    tc_decoder.reset()
    restarted = tc_decoder.decode(case["latents"][:, :, lat], case["lq"][:, :, lq])
    assert continued.shape[2] == 24
    assert torch.equal(restarted, first)


@pytest.mark.conformance
def test_tiny_output_after_adain(case, tiny_frames):
    expected = case["expected"]
    output = adain_color_fix(tiny_frames, case["lq"])
    assert max_abs_diff(pool8(output), expected["tiny.output.pool8"]) < OUTPUT_TOLERANCE
    for index in (0, 36):
        frame = to_uint8(output[0, :, index]).int()
        reference = expected[f"tiny.output_uint8.frame{index}"].int()
        assert (frame - reference).abs().max().item() <= 1
        assert (frame != reference).sum().item() <= MAX_UINT8_FLIPS


@pytest.mark.conformance
def test_tiny_long_per_step_adain(case, tc_decoder):
    expected = case["expected"]
    tc_decoder.reset()
    outputs = [
        adain_color_fix(
            tc_decoder.decode(case["latents"][:, :, lat], case["lq"][:, :, lq]), case["lq"][:, :, lq]
        )
        for lat, lq in TINY_LONG_STEPS
    ]
    assert max_abs_diff(pool8(torch.cat(outputs, dim=2)), expected["tiny.output.pool8"]) < OUTPUT_TOLERANCE


@pytest.mark.conformance
def test_tc_decoder_rejects_mismatched_cond(case, tc_decoder):
    tc_decoder.reset()
    with pytest.raises(ValueError, match="cond frames"):
        tc_decoder.decode(case["latents"][:, :, 0:6], case["lq"][:, :, 0:29])
    with pytest.raises(ValueError, match="8x the latent size"):
        tc_decoder.decode(case["latents"][:, :, 0:6], case["lq"][:, :, 0:21, :128])


@pytest.mark.conformance
def test_wan_vae_config_from_checkpoint(vae_decoder):
    assert vae_decoder.config == WanVAEDecoderConfig(dim=8, z_dim=16)
    assert len(vae_decoder.state_dict()) == 108


@pytest.mark.conformance
def test_wan_vae_matches_reference(case, full_frames):
    expected = case["expected"]
    assert full_frames.shape == (1, 3, 37, 256, 384)
    assert full_frames.min().item() >= -1.0
    assert full_frames.max().item() <= 1.0
    assert max_abs_diff(pool8(full_frames), expected["full.decoder_out.pool8"]) < DECODER_TOLERANCE
    assert max_abs_diff(full_frames[:, :, 36], expected["full.decoder_out.frame36"]) < DECODER_TOLERANCE


@pytest.mark.conformance
def test_full_output_after_adain(case, full_frames):
    expected = case["expected"]
    output = adain_color_fix(full_frames, case["lq"])
    assert max_abs_diff(pool8(output), expected["full.output.pool8"]) < OUTPUT_TOLERANCE
    for index in (0, 36):
        frame = to_uint8(output[0, :, index]).int()
        reference = expected[f"full.output_uint8.frame{index}"].int()
        assert (frame - reference).abs().max().item() <= 1
        assert (frame != reference).sum().item() <= MAX_UINT8_FLIPS


@pytest.mark.conformance
def test_wan_vae_single_tile_equals_untiled(case, vae_decoder, full_frames):
    latents = case["latents"][:, :, :1]
    tiled = vae_decoder.decode(latents, tiled=True, tile_size=(32, 48), tile_stride=(16, 24))
    assert tiled.shape == (1, 3, 1, 256, 384)
    assert max_abs_diff(tiled, full_frames[:, :, :1]) < 1e-6


@pytest.mark.conformance
def test_wan_vae_tiles_blend_only_in_overlaps(case, vae_decoder):
    latents = case["latents"][:, :, :1, :16, :24]
    tiled = vae_decoder.decode(latents, tiled=True, tile_size=(10, 16), tile_stride=(6, 8))
    top_left = vae_decoder.decode(latents[:, :, :, :10, :16])
    assert tiled.shape == (1, 3, 1, 128, 192)
    # Pixels above row 48 and left of column 64 lie in the top-left tile only.
    assert max_abs_diff(tiled[..., :48, :64], top_left[..., :48, :64]) < 1e-6
    assert max_abs_diff(tiled[..., :48, 64:128], top_left[..., :48, 64:128]) > 1e-3


def test_wan_vae_rejects_tile_stride_above_size():
    decoder = WanVAEDecoder(WanVAEDecoderConfig(dim=2))
    with pytest.raises(ValueError, match="tile stride"):
        decoder.decode(torch.zeros(1, 16, 1, 4, 4), tiled=True, tile_size=(2, 2), tile_stride=(3, 2))


def test_tile_boxes_cover_latents_once_per_stride():
    assert tile_boxes((32, 48), (60, 104), (30, 52)) == [(0, 60, 0, 104)]
    assert tile_boxes((65, 110), (60, 104), (30, 52)) == [
        (0, 60, 0, 104),
        (0, 60, 52, 156),
        (30, 90, 0, 104),
        (30, 90, 52, 156),
    ]


def test_blend_mask_ramps_on_inner_sides():
    mask = blend_mask((6, 8), (True, False, False, True), (2, 4))[0, 0, 0]
    assert mask.shape == (6, 8)
    assert mask[:4, 4:].eq(1).all()
    assert mask[4:, 4].tolist() == [1.0, 0.5]
    assert mask[0, :4].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert mask[5, 0].item() == 0.25


def test_release_configs_on_meta_device():
    with torch.device("meta"):
        tc = TCDecoder(TCDecoderConfig.release())
        vae = WanVAEDecoder(WanVAEDecoderConfig.release())
    assert sum(p.numel() for p in tc.parameters()) == 45_338_371
    assert tc.decoder[1].weight.shape == (512, 784, 3, 3)
    assert sum(p.numel() for p in vae.parameters()) == 73_295_603
    assert len(vae.state_dict()) == 108


def test_strict_load_names_missing_key():
    decoder = TCDecoder(TCDecoderConfig(channels=(4, 4, 4, 4)))
    state_dict = decoder.state_dict()
    del state_dict["decoder.12.conv.2.weight"]
    with pytest.raises(WeightLoadError) as raised:
        load_strict(decoder, state_dict, "TCDecoder.ckpt")
    assert raised.value.detail.startswith("TCDecoder.ckpt: missing key 'decoder.12.conv.2.weight'")
    assert "expected shape [4, 4, 3, 3]" in raised.value.detail
    assert raised.value.user_message == "The FlashVSR weights could not be loaded."


def test_strict_load_names_wrong_shape():
    decoder = WanVAEDecoder(WanVAEDecoderConfig(dim=2))
    file_state_dict = {f"encoder.{k}": v for k, v in decoder.state_dict().items()} | decoder.state_dict()
    file_state_dict["decoder.head.2.weight"] = torch.zeros(3, 4, 3, 3, 3)
    with pytest.raises(WeightLoadError) as raised:
        decoder.load_checkpoint_state_dict(file_state_dict, "Wan2.1_VAE.pth")
    assert raised.value.detail == (
        "Wan2.1_VAE.pth: key 'decoder.head.2.weight' has shape [3, 4, 3, 3, 3], "
        "expected shape [3, 2, 3, 3, 3]"
    )


def test_strict_load_rejects_unexpected_key():
    decoder = TCDecoder(TCDecoderConfig(channels=(4, 4, 4, 4)))
    state_dict = decoder.state_dict() | {"decoder.27.weight": torch.zeros(1)}
    message = r"unexpected key 'decoder\.27\.weight' \(1 unexpected in all\)"
    with pytest.raises(WeightLoadError, match=message):
        load_strict(decoder, state_dict, "TCDecoder.ckpt")


def test_vae_state_dict_selection_drops_encoder():
    decoder = WanVAEDecoder(WanVAEDecoderConfig(dim=2))
    encoder_entries = {"encoder.conv1.weight": torch.zeros(1), "conv1.bias": torch.zeros(1)}
    file_state_dict = {"model_state": decoder.state_dict() | encoder_entries}
    selected = select_decoder_state_dict(file_state_dict)
    assert set(selected) == set(decoder.state_dict())
    decoder.load_checkpoint_state_dict(file_state_dict, "Wan2.1_VAE.pth")
