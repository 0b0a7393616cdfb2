"""`manage.py cleanup_tasks`: delete finished tasks older than the retention period, with their files."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tasks_app.maintenance import cleanup_tasks


class Command(BaseCommand):
    help = (
        "Delete succeeded, failed, cancelled and interrupted tasks that finished more than --older-than "
        "days ago, with their result, preview and (when no other task uses it) input files. Queued and "
        "running tasks are never touched."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="DAYS",
            help=(
                "Age in days of the tasks to delete "
                f"(default: TASK_RETENTION_DAYS, now {settings.TASK_RETENTION_DAYS})."
            ),
        )
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be deleted.")

    def handle(self, *args, **options) -> None:
        days = options["older_than"]
        if days is not None and days < 0:
            raise CommandError(f"--older-than must be 0 or more days, got {days}.")
        report = cleanup_tasks(older_than_days=days, dry_run=options["dry_run"])
        verb = "Would delete" if options["dry_run"] else "Deleted"
        removed = report.removed
        self.stdout.write(
            f"{verb} {report.tasks} tasks and {removed.files} files, freeing {removed.bytes} bytes."
        )
        for problem in report.skipped:
            self.stderr.write(f"Skipped {problem}")
        if report.skipped:
            raise CommandError(
                f"{len(report.skipped)} tasks could not be deleted; see the messages above and the log."
            )
