"""Typed readers for environment variables that fail loudly on a malformed value.

Every setting the site reads from the environment goes through these helpers, so a typo such as
`FLASHVSR_MAX_UPLOAD_BYTES=2 GB` or `DEBUG=yes please` stops the process at start with the variable's name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Binary multiples: 1 KB = 1 KiB = 1024 bytes, so "2GB" is 2 * 1024**3 bytes.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def _invalid(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is invalid: expected {expected}.")


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    return _env_number(name, default, int, "a whole number", minimum, maximum)


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    return _env_number(name, default, float, "a number", minimum, maximum)


def _env_number(name, default, parse, kind: str, minimum, maximum):
    """Parse `name` with `parse` (int or float); `kind` names the expected value in the error message."""
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = parse(value)
    except ValueError:
        raise _invalid(name, value, kind) from None
    if minimum is not None and number < minimum:
        raise _invalid(name, value, f"{kind} of at least {minimum}")
    if maximum is not None and number > maximum:
        raise _invalid(name, value, f"{kind} of at most {maximum}")
    return number


def parse_size(text: str) -> int:
    """Parse a byte count such as `512MB`, `2GB`, `1.5G` or `1048576` (binary units); raise ValueError."""
    match = _SIZE_PATTERN.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def env_bytes(name: str, default: int) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        return parse_size(value)
    except ValueError:
        raise _invalid(name, value, "a size in bytes such as 2GB, 512MB or 1048576") from None


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _invalid(name, value, "one of 1/0, true/false, yes/no, on/off")


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list; empty items are dropped, so `a,,b` is `["a", "b"]`."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise _invalid(name, value, "one of " + ", ".join(choices))
    return value


def database_from_url(url: str, *, base_dir: Path) -> dict:
    """Build a Django DATABASES entry from `postgres://user:password@host:port/name` or `sqlite:///path`.

    A relative SQLite path (`sqlite:///var/db.sqlite3`) is taken relative to `base_dir`; an absolute one needs
    four slashes (`sqlite:////srv/flashvsr/db.sqlite3`).
    """
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        return _postgres_database(parts, url)
    if parts.scheme == "sqlite":
        return sqlite_database(_sqlite_path(parts.path, url, base_dir))
    raise _invalid("DATABASE_URL", url, "a postgres://... or sqlite:///... URL")


def _postgres_database(parts, url: str) -> dict:
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise _invalid(
            "DATABASE_URL", url, "a database name after the host, e.g. postgres://host:5432/flashvsr"
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def _sqlite_path(url_path: str, url: str, base_dir: Path) -> Path:
    relative = url_path[1:] if url_path.startswith("/") else url_path
    if not relative:
        raise _invalid("DATABASE_URL", url, "a file path, e.g. sqlite:///var/db.sqlite3")
    path = Path(unquote(relative))
    return path if path.is_absolute() else base_dir / path


def sqlite_database(path: Path) -> dict:
    """SQLite tuned for one web process plus queue workers: WAL, a busy timeout and immediate transactions."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def read_secret(name: str) -> str:
    """Read a secret from `NAME`, or from the file named by `NAME_FILE` (systemd credentials, Docker secrets).

    Setting both is an error. Whitespace around the secret in the file is ignored.
    """
    value = env_str(name, "")
    file_variable = f"{name}_FILE"
    file_name = env_str(file_variable, "")
    if value and file_name:
        raise ImproperlyConfigured(f"Both {name} and {file_variable} are set. Set only one of them.")
    if not file_name:
        return value
    try:
        secret = Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ImproperlyConfigured(
            f"{file_variable}={file_name!r} cannot be read ({error.strerror}). "
            "Check the path and its permissions."
        ) from None
    if not secret:
        raise ImproperlyConfigured(f"{file_variable}={file_name!r} is empty. Write the secret into it.")
    return secret


def env_header(name: str) -> tuple[str, str] | None:
    """Read `Header-Name: value` as Django's (`HTTP_HEADER_NAME`, `value`) pair; unset or empty gives None."""
    value = env_str(name, "")
    if not value:
        return None
    header, separator, expected = value.partition(":")
    header, expected = header.strip(), expected.strip()
    if not separator or not header or not expected or not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise _invalid(name, value, "a header and its value such as 'X-Forwarded-Proto: https'")
    return "HTTP_" + header.upper().replace("-", "_"), expected
