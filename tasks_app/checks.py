"""System checks for deployment facts the code relies on but cannot enforce itself."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_upload_temp_dir_on_media_volume(app_configs, **kwargs):
    """Uploads are stored by renaming the temporary file, which only works within one filesystem."""
    try:
        same_device = os.stat(settings.FILE_UPLOAD_TEMP_DIR).st_dev == os.stat(settings.MEDIA_ROOT).st_dev
    except OSError:
        return []  # a missing folder is reported by Django's own files.E001 check
    if same_device:
        return []
    return [
        Warning(
            f"FILE_UPLOAD_TEMP_DIR ({settings.FILE_UPLOAD_TEMP_DIR}) is on another filesystem than "
            f"MEDIA_ROOT "
            f"({settings.MEDIA_ROOT}), so every upload is copied instead of renamed.",
            hint="Leave FILE_UPLOAD_TEMP_DIR at its default, MEDIA_ROOT/tmp.",
            id="tasks_app.W001",
        )
    ]


@register()
def check_gpu_cluster_retry(app_configs, **kwargs):
    """django-q2 delivers a message again after `retry` seconds; a GPU job must finish well before that."""
    gpu = settings.Q_CLUSTER.get("ALT_CLUSTERS", {}).get(settings.Q_GPU_CLUSTER)
    if gpu is None:
        return [
            Error(
                f"Q_CLUSTER has no ALT_CLUSTERS entry {settings.Q_GPU_CLUSTER!r}; "
                f"`Q_CLUSTER_NAME={settings.Q_GPU_CLUSTER} manage.py qcluster` would fail with KeyError.",
                id="tasks_app.E002",
            )
        ]
    needed = gpu["timeout"] * (gpu.get("queue_limit", 1) + 1)
    if gpu["retry"] > needed:
        return []
    return [
        Error(
            f"The gpu cluster's retry ({gpu['retry']} s) must exceed "
            f"timeout x (queue_limit + 1) = {needed} s, "
            "or a long job is delivered a second time while it still runs.",
            hint="Raise retry in Q_CLUSTER['ALT_CLUSTERS']['gpu'] or lower FLASHVSR_TASK_TIMEOUT_SECONDS.",
            id="tasks_app.E003",
        )
    ]


@register()
def check_model_assets(app_configs, **kwargs):
    """Warn when the default variant or a preloaded variant lacks complete weight files."""
    from gpu import assets

    needed = {settings.DEFAULT_MODEL_VARIANT, *settings.MODEL_VARIANTS_TO_PRELOAD} - {"lanczos"}
    if not needed:
        return []
    report = assets.report(settings.FLASHVSR_MODEL_DIR)
    return [
        Warning(
            f"FlashVSR {variant} cannot run with the weights in {settings.FLASHVSR_MODEL_DIR}: "
            f"{report.variants[variant].summary}.",
            hint=(
                "Run `python manage.py download_weights`, or point FLASHVSR_MODEL_DIR at a folder with the "
                "FlashVSR v1.1 files; `python manage.py flashvsr_assets --verify` checks them."
            ),
            id="tasks_app.W010",
        )
        for variant in sorted(needed)
        if not report.ready(variant)
    ]
