"""Strict loading of the FlashVSR v1.1 weight folder.

The folder is laid out like the release: the DiT as safetensors, the other four files as torch
pickles that load with `weights_only=True`. A missing, unexpected or mis-shaped key raises
`WeightLoadError` naming the file, the key and the expected shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from gpu.assets import DIT_FILE, LQ_PROJ_FILE, PROMPT_FILE, TC_DECODER_FILE, VAE_FILE
from gpu.flashvsr.config import DiTConfig, LQProjConfig
from gpu.flashvsr.dit import WanDiT
from gpu.flashvsr.lq_proj import CausalLQProjector
from gpu.flashvsr.strict_load import WeightLoadError, load_strict

logger = logging.getLogger(__name__)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    _require_file(path)
    try:
        return safetensors.torch.load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for corrupt headers
        raise WeightLoadError(f"{path.name}: not a readable safetensors file ({error})") from error


def read_torch_file(path: Path) -> object:
    _require_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle and zip errors vary with the damage
        raise WeightLoadError(f"{path.name}: not a readable torch checkpoint ({error})") from error


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise WeightLoadError(
            f"{path.name}: file not found in {path.parent}; download the FlashVSR v1.1 weights"
        )


def _as_state_dict(loaded: object, source: str) -> dict[str, torch.Tensor]:
    if isinstance(loaded, Mapping) and "model_state" in loaded and isinstance(loaded["model_state"], Mapping):
        loaded = loaded["model_state"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightLoadError(f"{source}: expected a state dict of tensors, got {type(loaded).__name__}")
    return dict(loaded)


def load_dit(folder: Path) -> WanDiT:
    state_dict = read_safetensors(folder / DIT_FILE)
    try:
        config = DiTConfig.from_state_dict(state_dict, source=DIT_FILE)
    except (KeyError, ValueError) as error:
        raise WeightLoadError(str(error)) from error
    return _build_and_load(WanDiT, config, state_dict, DIT_FILE)


def load_lq_projector(folder: Path) -> CausalLQProjector:
    state_dict = _as_state_dict(read_torch_file(folder / LQ_PROJ_FILE), LQ_PROJ_FILE)
    try:
        config = LQProjConfig.from_state_dict(state_dict, source=LQ_PROJ_FILE)
    except (KeyError, ValueError) as error:
        raise WeightLoadError(str(error)) from error
    return _build_and_load(CausalLQProjector, config, state_dict, LQ_PROJ_FILE)


def load_prompt(folder: Path, text_dim: int) -> torch.Tensor:
    prompt = read_torch_file(folder / PROMPT_FILE)
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 3 or prompt.shape[0] != 1:
        shape = tuple(prompt.shape) if isinstance(prompt, torch.Tensor) else type(prompt).__name__
        raise WeightLoadError(
            f"{PROMPT_FILE}: expected one tensor of shape [1, tokens, {text_dim}], got {shape}"
        )
    if prompt.shape[2] != text_dim:
        raise WeightLoadError(
            f"{PROMPT_FILE}: prompt width {prompt.shape[2]} does not match the DiT text width {text_dim}"
        )
    return prompt


def load_tc_decoder(folder: Path):
    from gpu.flashvsr.tc_decoder import TCDecoder, TCDecoderConfig

    state_dict = _as_state_dict(read_torch_file(folder / TC_DECODER_FILE), TC_DECODER_FILE)
    config = _read_config(TCDecoderConfig, state_dict, TC_DECODER_FILE)
    return _build_and_load(TCDecoder, config, state_dict, TC_DECODER_FILE)


def load_vae_decoder(folder: Path):
    """Load `conv2.*` and `decoder.*` of the Wan VAE; the encoder and `conv1` in the file are skipped."""
    from gpu.flashvsr.wan_vae import WanVAEDecoder, WanVAEDecoderConfig, select_decoder_state_dict

    file_dict = _as_state_dict(read_torch_file(folder / VAE_FILE), VAE_FILE)
    known_prefixes = ("encoder.", "conv1.", "conv2.", "decoder.")
    stray = sorted(key for key in file_dict if not key.startswith(known_prefixes))
    if stray:
        raise WeightLoadError(
            f"{VAE_FILE}: unexpected key {stray[0]!r}; expected encoder.*, conv1.*, conv2.*, decoder.*"
        )
    state_dict = select_decoder_state_dict(file_dict)
    config = _read_config(WanVAEDecoderConfig, state_dict, VAE_FILE)
    return _build_and_load(WanVAEDecoder, config, state_dict, VAE_FILE)


def _build_and_load(module_class, config, state_dict: Mapping[str, torch.Tensor], source: str):
    # Built on the meta device, the module allocates no memory until it takes the file's tensors.
    with torch.device("meta"):
        module = module_class(config)
    return load_strict(module, state_dict, source)


def _read_config(config_class, state_dict: Mapping[str, torch.Tensor], source: str):
    try:
        return config_class.from_state_dict(state_dict)
    except (KeyError, ValueError, IndexError) as error:
        raise WeightLoadError(f"{source}: cannot read the model size ({error})") from error


@dataclass
class FlashVSRWeights:
    """The modules of one variant, on one device and dtype."""

    dit: WanDiT
    lq_projector: CausalLQProjector
    prompt: torch.Tensor
    tc_decoder: nn.Module | None = None
    vae_decoder: nn.Module | None = None

    @property
    def device(self) -> torch.device:
        """Device of the modules. load_weights and ModelCache put all of them on one device and dtype."""
        return self.dit.patch_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.dit.patch_embedding.weight.dtype


def load_weights(
    folder: str | Path, variant: str, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> FlashVSRWeights:
    """Load the modules `variant` needs ("tiny", "tiny_long" or "full") from a release-layout folder.

    `dtype` defaults to bfloat16 on CUDA, as the release runs, and float32 elsewhere.
    """
    if variant not in ("tiny", "tiny_long", "full"):
        raise ValueError(f"unknown FlashVSR variant {variant!r}; expected tiny, tiny_long or full")
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightLoadError(f"weight folder {folder} not found; download the FlashVSR v1.1 weights into it")
    dit = load_dit(folder)
    weights = FlashVSRWeights(
        dit=dit,
        lq_projector=load_lq_projector(folder),
        prompt=load_prompt(folder, dit.config.text_dim),
    )
    if variant == "full":
        weights.vae_decoder = load_vae_decoder(folder)
    else:
        weights.tc_decoder = load_tc_decoder(folder)
    for module in (weights.dit, weights.lq_projector, weights.tc_decoder, weights.vae_decoder):
        if module is not None:
            module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    weights.prompt = weights.prompt.to(device=device, dtype=dtype)
    logger.info("loaded FlashVSR %s weights from %s (%s, %s)", variant, folder, device, dtype)
    return weights
