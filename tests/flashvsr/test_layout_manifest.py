"""Modules built at release size have exactly the tensor names and shapes of the release files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gpu.flashvsr.config import RELEASE_LQ_PROJ, WAN21_1_3B
from gpu.flashvsr.dit import WanDiT
from gpu.flashvsr.lq_proj import CausalLQProjector
from gpu.flashvsr.strict_load import check_state_dict

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((REPO_ROOT / "gpu" / "flashvsr" / "release_layout.json").read_text())


def build_dit():
    return WanDiT(WAN21_1_3B)


def build_lq_projector():
    return CausalLQProjector(RELEASE_LQ_PROJ)


def build_tc_decoder():
    from gpu.flashvsr.tc_decoder import TCDecoder, TCDecoderConfig

    return TCDecoder(TCDecoderConfig.release())


def build_vae_decoder():
    from gpu.flashvsr.wan_vae import WanVAEDecoder, WanVAEDecoderConfig

    return WanVAEDecoder(WanVAEDecoderConfig.release())


BUILDERS = {
    "diffusion_pytorch_model_streaming_dmd.safetensors": build_dit,
    "LQ_proj_in.ckpt": build_lq_projector,
    "TCDecoder.ckpt": build_tc_decoder,
    "Wan2.1_VAE.pth#decoder": build_vae_decoder,
}


@pytest.mark.parametrize("file_name", list(BUILDERS))
def test_module_layout_matches_release(file_name):
    record = MANIFEST["files"][file_name]
    with torch.device("meta"):
        module = BUILDERS[file_name]()
    actual = {key: list(tensor.shape) for key, tensor in module.state_dict().items()}
    missing = sorted(set(record["keys"]) - set(actual))
    extra = sorted(set(actual) - set(record["keys"]))
    assert not missing, f"module lacks {len(missing)} release keys, first {missing[:3]}"
    assert not extra, f"module has {len(extra)} keys the release lacks, first {extra[:3]}"
    wrong = {key: (actual[key], shape) for key, shape in record["keys"].items() if actual[key] != shape}
    assert not wrong, f"shape mismatches (module, release): {dict(list(wrong.items())[:3])}"
    assert len(actual) == record["tensors"]
    assert sum(math.prod(shape) for shape in actual.values()) == record["parameters"]


def test_manifest_totals_are_the_published_figures():
    files = MANIFEST["files"]
    assert files["diffusion_pytorch_model_streaming_dmd.safetensors"]["tensors"] == 825
    assert files["diffusion_pytorch_model_streaming_dmd.safetensors"]["parameters"] == 1_418_996_800
    assert files["LQ_proj_in.ckpt"]["parameters"] == 287_845_888
    assert files["TCDecoder.ckpt"]["tensors"] == 66
    assert files["Wan2.1_VAE.pth#decoder"]["tensors"] == 108
    for record in files.values():
        assert len(record["keys"]) == record["tensors"]


def test_release_shapes_pass_strict_check():
    with torch.device("meta"):
        module = build_lq_projector()
    release = {
        key: torch.empty(shape, device="meta")
        for key, shape in MANIFEST["files"]["LQ_proj_in.ckpt"]["keys"].items()
    }
    check_state_dict(module, release, "LQ_proj_in.ckpt")
