"""The FlashVSR modules of one worker process, loaded on first use and shared between variants.

Tiny and Tiny-Long use the same four files, and Full shares the DiT, LQ projector and prompt with them, so
each file is loaded at most once per folder, device and dtype. Nothing loads at import: the web process
imports this module only when it runs an upscale itself (the `upscale` management command).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from gpu.flashvsr import weights as weight_files
from gpu.flashvsr.weights import FlashVSRWeights, WeightLoadError
from gpu.params import MODEL_VARIANTS, ModelError

log = logging.getLogger(__name__)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class ModelCache:
    """Loaded modules keyed by (folder, device, dtype, part); `weights` assembles a variant from them."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str, torch.dtype, str], object] = {}
        self._lock = threading.Lock()

    def weights(
        self,
        model_dir: str | Path,
        variant: str,
        device: torch.device | str,
        dtype: torch.dtype | None = None,
    ) -> FlashVSRWeights:
        """Return the modules `variant` needs, loading the missing ones; raises ModelError with advice."""
        if variant not in MODEL_VARIANTS:
            raise ValueError(
                f"unknown FlashVSR variant {variant!r}; expected one of {', '.join(MODEL_VARIANTS)}"
            )
        device = torch.device(device)
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        folder = Path(model_dir).resolve()
        with self._lock:
            try:
                return self._assemble(folder, variant, device, dtype)
            except WeightLoadError as error:
                raise ModelError(
                    f"The FlashVSR weights in {folder} could not be loaded for the {variant} variant. "
                    "Run `python manage.py flashvsr_assets --verify` to find the bad file, then "
                    "`python manage.py download_weights` to fetch it again.",
                    detail=error.detail,
                ) from error

    def loaded_parts(self) -> list[str]:
        return sorted({key[3] for key in self._parts})

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()

    def _assemble(
        self, folder: Path, variant: str, device: torch.device, dtype: torch.dtype
    ) -> FlashVSRWeights:
        dit = self._part(folder, device, dtype, "dit", lambda: weight_files.load_dit(folder))
        weights = FlashVSRWeights(
            dit=dit,
            lq_projector=self._part(
                folder, device, dtype, "lq_projector", lambda: weight_files.load_lq_projector(folder)
            ),
            prompt=self._part(
                folder, device, dtype, "prompt", lambda: weight_files.load_prompt(folder, dit.config.text_dim)
            ),
        )
        if variant == "full":
            weights.vae_decoder = self._part(
                folder, device, dtype, "vae_decoder", lambda: weight_files.load_vae_decoder(folder)
            )
        else:
            weights.tc_decoder = self._part(
                folder, device, dtype, "tc_decoder", lambda: weight_files.load_tc_decoder(folder)
            )
        return weights

    def _part(self, folder: Path, device: torch.device, dtype: torch.dtype, name: str, load):
        key = (str(folder), str(device), dtype, name)
        if key not in self._parts:
            started = time.monotonic()
            loaded = load()
            if isinstance(loaded, torch.Tensor):
                loaded = loaded.to(device=device, dtype=dtype)
            else:
                loaded.to(device=device, dtype=dtype).eval().requires_grad_(False)
            self._parts[key] = loaded
            log.info(
                "Loaded FlashVSR %s from %s onto %s (%s) in %.1f s",
                name,
                folder,
                device,
                dtype,
                time.monotonic() - started,
            )
        return self._parts[key]


_SHARED = ModelCache()


def shared_cache() -> ModelCache:
    """Return the process-wide cache used by the upscalers."""
    return _SHARED


def preload(model_dir: str | Path, variants: Iterable[str], device: str | None = None) -> list[str]:
    """Load `variants` into the shared cache now; return the variants that failed, after logging why."""
    failed = []
    for variant in variants:
        try:
            _SHARED.weights(model_dir, variant, device or default_device())
            log.info("Preloaded FlashVSR %s from %s", variant, model_dir)
        except ModelError as error:
            log.error("Preloading FlashVSR %s from %s failed: %s", variant, model_dir, error)
            failed.append(variant)
    return failed


def tile_state_copy(weights: FlashVSRWeights) -> FlashVSRWeights:
    """Copy the streaming state of the projector and decoders while sharing every parameter and buffer.

    Each spatial tile needs its own causal-convolution history and decoder memory; the weights stay single.
    """
    shared = {}
    for module in (weights.dit, weights.lq_projector, weights.tc_decoder, weights.vae_decoder):
        if module is None:
            continue
        for tensor in list(module.parameters()) + list(module.buffers()):
            shared[id(tensor)] = tensor
    return FlashVSRWeights(
        dit=weights.dit,
        lq_projector=copy.deepcopy(weights.lq_projector, shared),
        prompt=weights.prompt,
        tc_decoder=copy.deepcopy(weights.tc_decoder, shared),
        vae_decoder=copy.deepcopy(weights.vae_decoder, shared),
    )
