"""Upscaler variants and the registry that picks one for `UpscaleParams.variant`.

Variants are imported only when chosen, so importing this package never imports torch.
"""

from __future__ import annotations

import importlib

from gpu.params import VARIANTS, ModelError, RuntimeOptions, UpscaleParams
from gpu.upscalers.base import Upscaler

# Each entry names "module:factory"; the factory takes RuntimeOptions and the run's UpscaleParams (keyword
# `params`) and returns an Upscaler.
_FACTORIES: dict[str, str] = {
    "lanczos": "gpu.upscalers.lanczos:LanczosUpscaler",
    "tiny_long": "gpu.upscalers.flashvsr:tiny_long",
    "tiny": "gpu.upscalers.flashvsr:tiny",
    "full": "gpu.upscalers.flashvsr:full",
}


def register_upscaler(variant: str, factory_path: str) -> None:
    """Make `variant` available through `get_upscaler`, built by the "module:factory" at `factory_path`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    _FACTORIES[variant] = factory_path


def available_variants() -> tuple[str, ...]:
    return tuple(variant for variant in VARIANTS if variant in _FACTORIES)


def get_upscaler(variant: str, options: RuntimeOptions, params: UpscaleParams | None = None) -> Upscaler:
    """Build the upscaler for `variant`; raises ModelError when this installation cannot run it."""
    factory_path = _FACTORIES.get(variant)
    if factory_path is None:
        raise ModelError(
            f"The {variant} variant is not available in this installation yet. "
            f"Choose one of: {', '.join(available_variants())}.",
            detail=f"no upscaler registered for variant {variant!r}",
        )
    module_name, _, factory_name = factory_path.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    return factory(options, params=params)
