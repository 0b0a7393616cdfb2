"""`manage.py reconcile_tasks`: mark tasks left running by a dead worker as interrupted."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tasks_app.maintenance import reconcile_tasks


class Command(BaseCommand):
    help = (
        "Mark running tasks whose worker stopped sending heartbeats as interrupted (or cancelled, when a "
        "cancel was requested), and remove their partial files. Run it before starting the GPU worker."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--stale-seconds",
            type=float,
            default=None,
            help="Seconds without a heartbeat after which a worker counts as dead "
            "(default: FLASHVSR_HEARTBEAT_STALE_SECONDS).",
        )

    def handle(self, *args, **options) -> None:
        stale_seconds = options["stale_seconds"]
        if stale_seconds is not None and stale_seconds <= 0:
            raise CommandError(f"--stale-seconds must be greater than 0, got {stale_seconds:g}.")
        report = reconcile_tasks(stale_seconds=stale_seconds)
        for task_id in report.interrupted:
            self.stdout.write(f"interrupted {task_id}")
        for task_id in report.cancelled:
            self.stdout.write(f"cancelled {task_id}")
        self.stdout.write(
            f"Reconciled: {len(report.interrupted)} interrupted, {len(report.cancelled)} cancelled, "
            f"{report.removed.files} partial files removed ({report.removed.bytes} bytes), "
            f"{report.heartbeats_deleted} old worker heartbeats deleted."
        )
