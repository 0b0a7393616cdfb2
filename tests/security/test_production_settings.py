"""Production settings: the documented environment passes `check --deploy`, and secrets are required."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.variants.reduced_weights import write_reduced_weights

from .conftest import PYTHON, REPO_ROOT

ENV_EXAMPLE = REPO_ROOT / "docs" / "production.env.example"
SETTINGS_READ_CALL = re.compile(r"\b(?:env_[a-z]+|read_secret)\(\s*\"([A-Z][A-Z0-9_]+)\"")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=value lines as systemd's EnvironmentFile does: comments skipped, double quotes removed."""
    environment = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        assert separator, f"line without '=' in {path.name}: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        environment[key.strip()] = value
    return environment


def production_environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Return the example environment with its filesystem paths moved under `tmp_path`.

    Only paths change: the secret key file, MEDIA_ROOT, STATIC_ROOT and the model folder (empty unless a
    test overrides FLASHVSR_MODEL_DIR). PATH is the one variable added, so a variable missing from the example
    is missing here too.
    """
    environment = read_env_file(ENV_EXAMPLE)
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(secrets.token_urlsafe(64) + "\n")
    environment.update(
        {
            "PATH": "/usr/bin:/bin",
            "SECRET_KEY_FILE": str(secret_file),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "STATIC_ROOT": str(tmp_path / "staticfiles"),
            "FLASHVSR_MODEL_DIR": str(tmp_path / "models"),
        }
    )
    environment.update(overrides)
    return {key: value for key, value in environment.items() if value is not None}


def manage(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_example_spells_out_every_variable():
    settings_text = (REPO_ROOT / "flashvsr_site" / "settings.py").read_text()
    read = set(SETTINGS_READ_CALL.findall(settings_text))
    example = ENV_EXAMPLE.read_text()
    documented = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))

    assert "FLASHVSR_MAX_UPLOAD_BYTES" in read
    assert sorted(read - documented) == []
    assert read_env_file(ENV_EXAMPLE)["DEBUG"] == "0"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A weight folder that the asset check accepts: release file names at reduced sizes."""
    return str(write_reduced_weights(tmp_path_factory.mktemp("weights") / "FlashVSR-v1.1"))


def test_deploy_check_passes_without_collectstatic(tmp_path, model_dir):
    environment = production_environment(tmp_path, FLASHVSR_MODEL_DIR=model_dir)

    completed = manage(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "System check identified no issues" in completed.stdout


def test_deploy_check_passes_after_collectstatic(tmp_path, model_dir):
    environment = production_environment(tmp_path, FLASHVSR_MODEL_DIR=model_dir)
    collected = manage(environment, "collectstatic", "--noinput", "--verbosity", "0")
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "staticfiles" / "staticfiles.json").is_file()

    completed = manage(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_deploy_check_reports_missing_weights(tmp_path):
    completed = manage(production_environment(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert completed.returncode != 0
    assert "tasks_app.W010" in completed.stderr
    assert "tiny_long" in completed.stderr


def test_deploy_check_lanczos_without_weights(tmp_path):
    environment = production_environment(tmp_path, DEFAULT_MODEL_VARIANT="lanczos")

    completed = manage(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "tasks_app.W010" not in completed.stderr


def test_deploy_check_fails_without_https(tmp_path, model_dir):
    environment = production_environment(
        tmp_path,
        FLASHVSR_MODEL_DIR=model_dir,
        FLASHVSR_HTTPS="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
    )

    completed = manage(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert completed.returncode != 0
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check_id in completed.stderr


def test_https_switch_sets_secure_defaults(tmp_path):
    environment = production_environment(tmp_path)
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"):
        del environment[name]
    script = (
        "from django.conf import settings; "
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SECURE_SSL_REDIRECT, "
        "settings.SECURE_HSTS_SECONDS, settings.SECURE_PROXY_SSL_HEADER, settings.DEBUG, "
        "settings.STORAGES['staticfiles']['BACKEND'])"
    )

    completed = manage(environment, "shell", "--no-imports", "-c", script)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == [
        "True",
        "True",
        "True",
        "31536000",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "False",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ]


def test_missing_secret_key_stops_start(tmp_path):
    environment = production_environment(tmp_path, SECRET_KEY_FILE=None)

    completed = manage(environment, "check")

    assert completed.returncode != 0
    assert "SECRET_KEY is not set" in completed.stderr


def test_secret_key_file_unreadable_stops_start(tmp_path):
    environment = production_environment(tmp_path, SECRET_KEY_FILE=str(tmp_path / "no-such-file"))

    completed = manage(environment, "check")

    assert completed.returncode != 0
    assert "SECRET_KEY_FILE=" in completed.stderr
    assert "cannot be read" in completed.stderr


def test_secret_key_and_file_together_rejected(tmp_path):
    environment = production_environment(tmp_path, SECRET_KEY="x" * 64)

    completed = manage(environment, "check")

    assert completed.returncode != 0
    assert "Both SECRET_KEY and SECRET_KEY_FILE are set" in completed.stderr


def test_secret_key_file_value_is_used(tmp_path):
    environment = production_environment(tmp_path)
    expected = Path(environment["SECRET_KEY_FILE"]).read_text().strip()

    completed = manage(
        environment,
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == expected


@pytest.mark.parametrize("value", ["X-Forwarded-Proto", "X Forwarded: https", ": https"])
def test_malformed_proxy_header_rejected(tmp_path, value):
    environment = production_environment(tmp_path, SECURE_PROXY_SSL_HEADER=value)

    completed = manage(environment, "check")

    assert completed.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER" in completed.stderr
