"""`manage.py flashvsr_assets [--verify]`: report the FlashVSR weight files and which variants can run."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gpu import assets


class Command(BaseCommand):
    help = (
        "Check the FlashVSR v1.1 weight folder (FLASHVSR_MODEL_DIR) file by file and per variant. "
        "Exits with status 1 when the default variant cannot run."
    )
    # The asset system check reports the same facts; running it first would only print them twice.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Also compare release files with their published sha256 and test-load reduced files (slow).",
        )
        parser.add_argument(
            "--model-dir",
            type=Path,
            default=None,
            help="Folder to check instead of FLASHVSR_MODEL_DIR.",
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **options) -> None:
        model_dir = options["model_dir"] or Path(settings.FLASHVSR_MODEL_DIR)
        report = assets.report(model_dir, verify=options["verify"])
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            self._print(report)
        default = settings.DEFAULT_MODEL_VARIANT
        if default in report.variants and not report.ready(default):
            raise CommandError(
                f"The default variant {default} cannot run; fix the files listed above, for example with "
                "`python manage.py download_weights`.",
                returncode=1,
            )

    def _print(self, report: assets.AssetReport) -> None:
        self.stdout.write(f"Weight folder: {report.model_dir} (layout: {report.layout})")
        for entry in report.files.values():
            size = f"{entry.size:,} bytes" if entry.size is not None else "-"
            detail = entry.message or (f"{entry.layout} file" + (", verified" if entry.verified else ""))
            self.stdout.write(f"  {entry.status:<12} {entry.name:<52} {size:>20}  {detail}")
        for variant in report.variants.values():
            style = self.style.SUCCESS if variant.ready else self.style.ERROR
            self.stdout.write(style(f"{variant.variant}: {variant.summary}"))
