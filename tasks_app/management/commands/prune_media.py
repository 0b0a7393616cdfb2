"""`manage.py prune_media`: remove media files that no task refers to, and stale temporary files."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from tasks_app.maintenance import ORPHAN_GRACE_SECONDS, STALE_TEMP_FILE_SECONDS, prune_media


class Command(BaseCommand):
    help = (
        "Remove files under MEDIA_ROOT (uploads/, results/, previews/, tmp/) that no task refers to and "
        f"that are older than {ORPHAN_GRACE_SECONDS // 60} minutes, and temporary files older than "
        f"{STALE_TEMP_FILE_SECONDS // 3600} hours. Files of queued and running tasks are never removed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be removed.")

    def handle(self, *args, **options) -> None:
        removed = prune_media(dry_run=options["dry_run"])
        verb = "Would remove" if options["dry_run"] else "Removed"
        self.stdout.write(
            f"{verb} {removed.files} files under {settings.MEDIA_ROOT}, freeing {removed.bytes} bytes."
        )
