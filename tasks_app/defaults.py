"""The setting behind each upscaling parameter's default, for the upload form and the upscale command."""

from __future__ import annotations

from django.conf import settings

DEFAULT_SETTINGS = {
    "variant": "DEFAULT_MODEL_VARIANT",
    "scale": "FLASHVSR_DEFAULT_SCALE",
    "sparse_ratio": "FLASHVSR_DEFAULT_SPARSE_RATIO",
    "kv_ratio": "FLASHVSR_DEFAULT_KV_RATIO",
    "local_range": "FLASHVSR_DEFAULT_LOCAL_RANGE",
    "color_fix": "FLASHVSR_DEFAULT_COLOR_FIX",
    "seed": "FLASHVSR_DEFAULT_SEED",
    "codec": "FLASHVSR_DEFAULT_CODEC",
    "crf": "FLASHVSR_DEFAULT_CRF",
    "preset": "FLASHVSR_DEFAULT_PRESET",
}


def parameter_defaults() -> dict[str, object]:
    """Return the current default of each parameter in DEFAULT_SETTINGS, read from settings at call time."""
    return {name: getattr(settings, setting) for name, setting in DEFAULT_SETTINGS.items()}
