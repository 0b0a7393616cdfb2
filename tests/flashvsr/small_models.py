"""Small random-weight FlashVSR modules and a release-layout folder writer for the tests."""

from __future__ import annotations

from pathlib import Path

import safetensors.torch
import torch

from gpu.assets import DIT_FILE, LQ_PROJ_FILE, PROMPT_FILE, TC_DECODER_FILE
from gpu.flashvsr.config import DiTConfig, LQProjConfig
from gpu.flashvsr.dit import WanDiT
from gpu.flashvsr.lq_proj import CausalLQProjector
from gpu.flashvsr.weights import FlashVSRWeights

SMALL_DIT = DiTConfig(
    dim=64, in_dim=16, out_dim=16, ffn_dim=128, text_dim=32, freq_dim=32, num_heads=2, num_layers=2
)
SMALL_LQ_PROJ = LQProjConfig(hidden_dim1=32, hidden_dim2=48, out_dim=64)
SMALL_TC_CHANNELS = (32, 16, 8, 8)
PROMPT_TOKENS = 16


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every parameter random values; norms stay near 1 and modulations are strong enough to matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "norm" in name:
                param.copy_(1.0 + 0.2 * noise)
            elif "modulation" in name:
                param.copy_(0.5 * noise)
            elif param.dim() == 1:
                param.copy_(0.1 * noise)
            else:
                param.copy_(noise / param[0].numel() ** 0.5)
    return module.eval().requires_grad_(False)


def small_modules(seed: int = 0, with_tc_decoder: bool = True) -> FlashVSRWeights:
    """Build the reduced DiT, projector, prompt and (optionally) TCDecoder with random weights."""
    from gpu.flashvsr.tc_decoder import TCDecoder, TCDecoderConfig

    dit = randomise(WanDiT(SMALL_DIT), seed)
    projector = randomise(CausalLQProjector(SMALL_LQ_PROJ), seed + 1)
    prompt = torch.randn(
        1, PROMPT_TOKENS, SMALL_DIT.text_dim, generator=torch.Generator().manual_seed(seed + 2)
    )
    tc_decoder = None
    if with_tc_decoder:
        torch.manual_seed(seed + 3)
        tc_decoder = TCDecoder(TCDecoderConfig(channels=SMALL_TC_CHANNELS)).eval().requires_grad_(False)
    return FlashVSRWeights(dit=dit, lq_projector=projector, prompt=prompt, tc_decoder=tc_decoder)


def write_release_folder(folder: Path, weights: FlashVSRWeights) -> Path:
    """Save modules in the release layout: safetensors DiT, torch pickles for the rest."""
    folder.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in weights.dit.state_dict().items()}, str(folder / DIT_FILE)
    )
    lq_state = {k: v.to(torch.bfloat16) for k, v in weights.lq_projector.state_dict().items()}
    torch.save(lq_state, folder / LQ_PROJ_FILE)
    torch.save(weights.prompt.to(torch.bfloat16), folder / PROMPT_FILE)
    if weights.tc_decoder is not None:
        torch.save(weights.tc_decoder.state_dict(), folder / TC_DECODER_FILE)
    return folder
