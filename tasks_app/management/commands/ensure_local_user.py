"""`manage.py ensure_local_user`: make sure someone can log in to a fresh local install, and print how."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEFAULT_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create a superuser with a generated password when no user exists yet, store the login in a file "
        "readable only by the owner, and print it. When users exist, print the stored login again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--credentials-file", required=True, help="File that keeps the generated login.")
        parser.add_argument(
            "--address",
            default="127.0.0.1:8000",
            help="host:port the web server listens on, printed in the login line (default: %(default)s).",
        )
        parser.add_argument(
            "--username", default=DEFAULT_USERNAME, help="User name to create (default: admin)."
        )

    def handle(self, *args, **options) -> None:
        credentials = Path(options["credentials_file"])
        users = get_user_model().objects
        if not users.exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser(username=options["username"], email="", password=password)
            _write_private(credentials, f"username: {options['username']}\npassword: {password}\n")
            self.stdout.write(f"Created the user {options['username']!r}.")
        if credentials.exists():
            self.stdout.write(f"Log in at http://{options['address']} with (stored in {credentials}):")
            self.stdout.write(credentials.read_text().rstrip())
        else:
            self.stdout.write(
                "Log in with an existing account. To add one, run: python manage.py createsuperuser"
            )


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
