"""Strict loading of a release-layout weight folder, and the errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch

from gpu.assets import DIT_FILE, LQ_PROJ_FILE, PROMPT_FILE, TC_DECODER_FILE
from gpu.flashvsr.weights import (
    WeightLoadError,
    load_dit,
    load_lq_projector,
    load_weights,
)
from gpu.params import ModelError


def rewrite_dit(folder: Path, edit) -> None:
    path = folder / DIT_FILE
    state_dict = safetensors.torch.load_file(str(path))
    edit(state_dict)
    safetensors.torch.save_file(state_dict, str(path))


def test_loads_release_layout(release_folder, small_weights):
    weights = load_weights(release_folder, "tiny")
    assert weights.dit.config == small_weights.dit.config
    assert torch.equal(weights.dit.blocks[1].ffn[2].weight, small_weights.dit.blocks[1].ffn[2].weight)
    # LQ_proj_in.ckpt and posi_prompt.pth are bfloat16 files, upcast on load.
    assert weights.lq_projector.conv1.weight.dtype == torch.float32
    assert weights.prompt.shape == (1, 16, 32)
    assert weights.tc_decoder is not None
    assert weights.vae_decoder is None
    assert not any(p.is_meta for p in weights.dit.parameters())


def test_missing_key_names_file_key_and_shape(release_folder):
    rewrite_dit(release_folder, lambda sd: sd.pop("blocks.1.self_attn.norm_k.weight"))
    with pytest.raises(WeightLoadError) as raised:
        load_dit(release_folder)
    message = str(raised.value)
    assert DIT_FILE in message
    assert "missing key 'blocks.1.self_attn.norm_k.weight'" in message
    assert "expected shape [64]" in message


def test_unexpected_key_is_rejected(release_folder):
    rewrite_dit(release_folder, lambda sd: sd.update({"img_emb.proj.0.weight": torch.zeros(4)}))
    with pytest.raises(WeightLoadError) as raised:
        load_dit(release_folder)
    assert DIT_FILE in str(raised.value)
    assert "unexpected key 'img_emb.proj.0.weight'" in str(raised.value)


def test_wrong_shape_names_expected_shape(release_folder):
    rewrite_dit(release_folder, lambda sd: sd.update({"blocks.0.ffn.2.bias": torch.zeros(65)}))
    with pytest.raises(WeightLoadError) as raised:
        load_dit(release_folder)
    message = str(raised.value)
    assert "'blocks.0.ffn.2.bias' has shape [65], expected shape [64]" in message
    assert DIT_FILE in message


def test_lq_projector_wrong_shape(release_folder):
    state_dict = torch.load(release_folder / LQ_PROJ_FILE, weights_only=True)
    state_dict["norm2.gamma"] = torch.ones(47, 1, 1, 1)
    torch.save(state_dict, release_folder / LQ_PROJ_FILE)
    with pytest.raises(WeightLoadError) as raised:
        load_lq_projector(release_folder)
    message = str(raised.value)
    assert LQ_PROJ_FILE in message
    assert "'norm2.gamma' has shape [47, 1, 1, 1], expected shape [48, 1, 1, 1]" in message


def test_missing_file_is_a_model_error(release_folder):
    (release_folder / TC_DECODER_FILE).unlink()
    with pytest.raises(ModelError) as raised:
        load_weights(release_folder, "tiny_long")
    assert f"{TC_DECODER_FILE}: file not found" in str(raised.value)
    assert raised.value.user_message == "The FlashVSR weights could not be loaded."


def test_corrupt_file_is_reported(release_folder):
    (release_folder / LQ_PROJ_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(WeightLoadError, match=f"{LQ_PROJ_FILE}: not a readable torch checkpoint"):
        load_lq_projector(release_folder)


def test_prompt_width_must_match_dit(release_folder):
    torch.save(torch.zeros(1, 16, 31, dtype=torch.bfloat16), release_folder / PROMPT_FILE)
    with pytest.raises(WeightLoadError, match="prompt width 31 does not match the DiT text width 32"):
        load_weights(release_folder, "tiny")


def test_missing_folder(tmp_path):
    with pytest.raises(WeightLoadError, match="not found"):
        load_weights(tmp_path / "absent", "tiny")


def test_unknown_variant(release_folder):
    with pytest.raises(ValueError, match="unknown FlashVSR variant 'lanczos'"):
        load_weights(release_folder, "lanczos")
