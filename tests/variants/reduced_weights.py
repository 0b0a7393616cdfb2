"""A FlashVSR weight folder with the release's file names and key names at tiny sizes, random weights.

The files load through the same strict loaders as the release, and `gpu.assets` recognises them as the
"test" layout because their tensor payload differs from the release's.
"""

from __future__ import annotations

from pathlib import Path

import safetensors.torch
import torch

from gpu.assets import DIT_FILE, LQ_PROJ_FILE, PROMPT_FILE, TC_DECODER_FILE, VAE_FILE
from gpu.flashvsr.config import DiTConfig, LQProjConfig
from gpu.flashvsr.dit import WanDiT
from gpu.flashvsr.lq_proj import CausalLQProjector
from gpu.flashvsr.tc_decoder import TCDecoder, TCDecoderConfig
from gpu.flashvsr.wan_vae import WanVAEDecoder, WanVAEDecoderConfig

REDUCED_DIT = DiTConfig(
    dim=64, in_dim=16, out_dim=16, ffn_dim=128, text_dim=32, freq_dim=32, num_heads=2, num_layers=2
)
REDUCED_LQ_PROJ = LQProjConfig(hidden_dim1=32, hidden_dim2=48, out_dim=64)
REDUCED_TC_CHANNELS = (32, 16, 8, 8)
REDUCED_VAE = WanVAEDecoderConfig(dim=8)
PROMPT_TOKENS = 16


def write_reduced_weights(folder: Path, seed: int = 0, with_vae: bool = True) -> Path:
    """Write all five files into `folder` (created if needed) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    dit = WanDiT(REDUCED_DIT)
    safetensors.torch.save_file(
        {key: value.contiguous() for key, value in dit.state_dict().items()}, str(folder / DIT_FILE)
    )
    projector = CausalLQProjector(REDUCED_LQ_PROJ)
    torch.save(
        {key: value.to(torch.bfloat16) for key, value in projector.state_dict().items()},
        folder / LQ_PROJ_FILE,
    )
    torch.save(
        TCDecoder(TCDecoderConfig(channels=REDUCED_TC_CHANNELS)).state_dict(), folder / TC_DECODER_FILE
    )
    if with_vae:
        torch.save(WanVAEDecoder(REDUCED_VAE).state_dict(), folder / VAE_FILE)
    torch.save(torch.randn(1, PROMPT_TOKENS, REDUCED_DIT.text_dim).to(torch.bfloat16), folder / PROMPT_FILE)
    return folder
