"""Warm the FlashVSR variants named in MODEL_VARIANTS_TO_PRELOAD when a gpu-cluster worker process starts.

Only the gpu cluster's workers run upscales, so only they load models; the web process and the maintenance
cluster never import torch for this. A variant that fails to load is logged and loads again on its first task,
where the task fails with the loader's message.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

logger = logging.getLogger(__name__)


def on_worker_spawn(sender, proc_name=None, **kwargs) -> None:
    """django-q2 `post_spawn` receiver: preload models in workers of the gpu cluster."""
    if os.environ.get("Q_CLUSTER_NAME") != settings.Q_GPU_CLUSTER:
        return
    preload_variants()


def preload_variants() -> list[str]:
    """Load MODEL_VARIANTS_TO_PRELOAD into this process's model cache; return the variants that failed."""
    variants = [variant for variant in settings.MODEL_VARIANTS_TO_PRELOAD if variant != "lanczos"]
    if not variants:
        return []
    from gpu.model_cache import preload

    logger.info("Preloading FlashVSR variants %s from %s", ", ".join(variants), settings.FLASHVSR_MODEL_DIR)
    return preload(settings.FLASHVSR_MODEL_DIR, variants)
