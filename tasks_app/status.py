"""Data for the system status panel: workers, queue depth, task counts, free disk, model assets.

Runs in the web process, so it never imports torch: GPU facts come from the heartbeat rows the workers write.
Each section is read on its own, and a section that fails becomes `Unavailable` with the reason, so one
broken part (an unreachable broker, an unmounted volume) never hides the others.
"""

from __future__ import annotations

import importlib
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Status, Task, WorkerHeartbeat

logger = logging.getLogger(__name__)

ASSETS_MODULE = "gpu.assets"


@dataclass(frozen=True)
class Unavailable:
    """A section that could not be read; `reason` goes into the panel's tooltip."""

    reason: str

    available = False


@dataclass(frozen=True)
class WorkerStatus:
    worker_id: str
    cluster: str
    age_seconds: float
    is_stale: bool
    gpu_name: str
    gpu_memory_used: int | None
    gpu_memory_total: int | None
    current_task_id: str | None


@dataclass(frozen=True)
class DiskStatus:
    free_bytes: int
    total_bytes: int

    @property
    def free_percent(self) -> int:
        return round(100 * self.free_bytes / self.total_bytes) if self.total_bytes else 0


@dataclass(frozen=True)
class AssetStatus:
    variant: str
    summary: str
    ready: bool | None


def collect_status(user, *, now: datetime | None = None) -> dict:
    """Read every section for `user`; each value is the section's data or an `Unavailable`."""
    now = now or timezone.now()
    return {
        "workers": _guarded("workers", lambda: read_workers(now)),
        "queue_depth": _guarded("queue", read_queue_depth),
        "task_counts": _guarded("task counts", lambda: read_task_counts(user)),
        "disk": _guarded("disk", read_disk),
        "assets": _guarded("model assets", read_assets),
    }


def _guarded(section: str, read: Callable[[], object]) -> object:
    try:
        return read()
    except Exception as error:
        # Any failure of one section (database, broker, file system, a bug in the asset report) is shown
        # as "unavailable" in that section only.
        logger.warning("Status panel section %s could not be read: %s", section, error, exc_info=True)
        return Unavailable(f"{type(error).__name__}: {error}")


def read_workers(now: datetime) -> list[WorkerStatus]:
    stale_after = settings.FLASHVSR_HEARTBEAT_STALE_SECONDS
    workers = []
    for beat in WorkerHeartbeat.objects.order_by("cluster", "worker_id"):
        age = max(0.0, (now - beat.seen_at).total_seconds())
        workers.append(
            WorkerStatus(
                worker_id=beat.worker_id,
                cluster=beat.cluster,
                age_seconds=age,
                is_stale=age > stale_after,
                gpu_name=beat.gpu_name,
                gpu_memory_used=beat.gpu_memory_used,
                gpu_memory_total=beat.gpu_memory_total,
                current_task_id=str(beat.current_task_id) if beat.current_task_id else None,
            )
        )
    return workers


def read_queue_depth() -> int:
    """Messages waiting in the gpu cluster's queue, shared by every user of the site."""
    from django_q.brokers import get_broker

    return get_broker(settings.Q_GPU_CLUSTER).queue_size()


def read_task_counts(user) -> dict[str, int]:
    """Count the user's own tasks per status; every status is present, zero when the user has none."""
    counts = {status.value: 0 for status in Status}
    rows = Task.objects.filter(owner=user).values("status").annotate(total=Count("pk"))
    for row in rows:
        counts[row["status"]] = row["total"]
    return counts


def read_disk() -> DiskStatus:
    usage = shutil.disk_usage(settings.MEDIA_ROOT)
    return DiskStatus(free_bytes=usage.free, total_bytes=usage.total)


def read_assets() -> list[AssetStatus] | Unavailable:
    """Summarise gpu.assets.report(model_dir) per variant; Unavailable when the module does not exist."""
    try:
        assets = importlib.import_module(ASSETS_MODULE)
    except ModuleNotFoundError as error:
        if error.name != ASSETS_MODULE:
            raise
        return Unavailable(_("The model asset report is not installed on this server."))
    report = assets.report(str(settings.FLASHVSR_MODEL_DIR))
    return [_asset_status(variant, entry) for variant, entry in _report_items(report)]


def _report_items(report) -> list[tuple[str, object]]:
    if hasattr(report, "to_dict"):
        report = report.to_dict()
    if isinstance(report, Mapping):
        variants = report.get("variants", report)
        if isinstance(variants, Mapping):
            return list(variants.items())
        report = variants
    return [(_field(entry, "variant") or str(index), entry) for index, entry in enumerate(report)]


def _asset_status(variant: str, entry) -> AssetStatus:
    ready = _field(entry, "ready")
    summary = _field(entry, "summary") or _field(entry, "status")
    if summary is None and ready is None:
        summary = str(entry)
    elif summary is None:
        summary = _("ready") if ready else _("not ready")
    if ready is not None:
        ready = bool(ready)
    return AssetStatus(variant=str(variant), summary=str(summary), ready=ready)


def _field(entry, name: str):
    if isinstance(entry, Mapping):
        return entry.get(name)
    return getattr(entry, name, None)
