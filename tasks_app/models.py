"""Upscaling tasks and GPU worker heartbeats."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from gpu.params import UpscaleParams


class Variant(models.TextChoices):
    TINY_LONG = "tiny_long", _("FlashVSR Tiny-Long")
    TINY = "tiny", _("FlashVSR Tiny")
    FULL = "full", _("FlashVSR Full")
    LANCZOS = "lanczos", _("Lanczos baseline (no model)")


class Scale(models.IntegerChoices):
    X2 = 2, "2×"
    X3 = 3, "3×"
    X4 = 4, "4×"


class ColorFix(models.TextChoices):
    ADAIN = "adain", _("AdaIN (match colour statistics)")
    WAVELET = "wavelet", _("Wavelet (keep low frequencies of the source)")
    NONE = "none", _("None")


class Codec(models.TextChoices):
    H264 = "h264", _("H.264 (8-bit)")
    HEVC = "hevc", _("HEVC (8-bit)")
    HEVC10 = "hevc10", _("HEVC (10-bit)")


class Container(models.TextChoices):
    MP4 = "mp4", "MP4"
    MKV = "mkv", "MKV"


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    INTERRUPTED = "interrupted", _("Interrupted")


ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)

# Fields copied one to one into gpu.params.UpscaleParams.
PARAM_FIELDS = (
    "variant",
    "scale",
    "sparse_ratio",
    "kv_ratio",
    "local_range",
    "color_fix",
    "seed",
    "codec",
    "container",
    "crf",
    "preset",
    "tiled",
    "kv_offload",
    "keep_partial_on_decode_error",
)


def input_upload_to(instance: Task, filename: str) -> str:
    """Store uploads under a generated name; the user's file name is kept only in `original_filename`."""
    return f"uploads/{uuid.uuid4().hex}"


def result_upload_to(instance: Task, filename: str) -> str:
    return f"results/{instance.pk}.{instance.container}"


def preview_upload_to(instance: Task, filename: str) -> str:
    return f"previews/{instance.pk}.jpg"


class Task(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("owner")
    )

    # Source
    original_filename = models.CharField(_("original file name"), max_length=255)
    input_file = models.FileField(_("input file"), upload_to=input_upload_to, max_length=255)
    input_size = models.BigIntegerField(_("input size (bytes)"), default=0)
    input_sha256 = models.CharField(_("input SHA-256"), max_length=64, blank=True)
    source_metadata = models.JSONField(_("source metadata"), default=dict, blank=True)

    # Parameters
    variant = models.CharField(_("variant"), max_length=16, choices=Variant, default=Variant.TINY_LONG)
    scale = models.PositiveSmallIntegerField(_("scale"), choices=Scale, default=Scale.X4)
    sparse_ratio = models.FloatField(_("sparse ratio"), default=2.0)
    kv_ratio = models.FloatField(_("KV cache ratio"), default=3.0)
    local_range = models.PositiveSmallIntegerField(_("local range"), default=11)
    color_fix = models.CharField(_("colour fix"), max_length=16, choices=ColorFix, default=ColorFix.ADAIN)
    seed = models.BigIntegerField(_("seed"), default=0)
    codec = models.CharField(_("codec"), max_length=16, choices=Codec, default=Codec.H264)
    container = models.CharField(_("container"), max_length=8, choices=Container, default=Container.MP4)
    crf = models.PositiveSmallIntegerField(_("CRF"), default=18)
    preset = models.CharField(_("encoder preset"), max_length=16, default="medium")
    tiled = models.BooleanField(_("tiled decoding"), default=False)
    kv_offload = models.BooleanField(_("KV cache offload"), default=False)
    keep_partial_on_decode_error = models.BooleanField(
        _("keep partial result on decode error"), default=False
    )

    # State and progress
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.QUEUED, db_index=True
    )
    progress = models.FloatField(_("progress"), default=0.0)
    processed_frames = models.PositiveIntegerField(_("processed frames"), default=0)
    total_frames = models.PositiveIntegerField(_("total frames"), default=0)
    frames_per_second = models.FloatField(_("frames per second"), null=True, blank=True)
    eta_seconds = models.FloatField(_("estimated seconds left"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    error_detail = models.TextField(_("technical error detail"), blank=True)
    notes = models.JSONField(_("notes"), default=list, blank=True)
    cancel_requested = models.BooleanField(_("cancel requested"), default=False)
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    retry_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
        verbose_name=_("retry of"),
    )
    worker_id = models.CharField(_("worker"), max_length=255, blank=True)

    # Outputs
    result_file = models.FileField(_("result file"), upload_to=result_upload_to, max_length=255, blank=True)
    result_size = models.BigIntegerField(_("result size (bytes)"), null=True, blank=True)
    preview_file = models.FileField(
        _("preview image"), upload_to=preview_upload_to, max_length=255, blank=True
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="task_owner_created_idx")]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")

    def __str__(self) -> str:
        return f"{self.original_filename} ({self.get_variant_display()}, {self.scale}×)"

    def params(self) -> UpscaleParams:
        return UpscaleParams(**{name: getattr(self, name) for name in PARAM_FIELDS})

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def progress_percent(self) -> int:
        return round(max(0.0, min(1.0, self.progress)) * 100)

    @property
    def download_filename(self) -> str:
        """The name offered on download: the upload's stem plus the scale, e.g. `holiday_x4.mp4`."""
        stem = PurePath(self.original_filename).stem or "video"
        return f"{stem}_x{self.scale}.{self.container}"


class WorkerHeartbeat(models.Model):
    """The latest sign of life of one queue worker process, written by the worker itself."""

    worker_id = models.CharField(_("worker"), max_length=255, unique=True, help_text=_("host:pid"))
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    cluster = models.CharField(_("cluster"), max_length=64, blank=True)
    gpu_name = models.CharField(_("GPU"), max_length=255, blank=True)
    gpu_memory_used = models.BigIntegerField(_("GPU memory used (bytes)"), null=True, blank=True)
    gpu_memory_total = models.BigIntegerField(_("GPU memory total (bytes)"), null=True, blank=True)
    current_task = models.ForeignKey(
        Task,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("current task"),
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    seen_at = models.DateTimeField(_("last seen"), db_index=True)

    class Meta:
        ordering = ["-seen_at"]
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return self.worker_id
