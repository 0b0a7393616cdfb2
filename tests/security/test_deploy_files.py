"""The files in deploy/ agree with the settings and with docs/production.env.example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from flashvsr_site.env import parse_size

from .conftest import REPO_ROOT
from .test_production_settings import ENV_EXAMPLE, production_environment, read_env_file

DEPLOY = REPO_ROOT / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "flashvsr.conf"
UNITS = {
    "web": DEPLOY / "systemd" / "flashvsr-web.service",
    "gpu": DEPLOY / "systemd" / "flashvsr-gpu@.service",
    "maintenance": DEPLOY / "systemd" / "flashvsr-maintenance.service",
}


def unit_values(path, key: str) -> list[str]:
    """Return every value of `key` in the [Service] section, in order; systemd allows repeated keys."""
    values, section = [], ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line.startswith(f"{key}="):
            values.append(line.split("=", 1)[1])
    return values


def test_nginx_body_limit_covers_upload_limit():
    upload_limit = parse_size(read_env_file(ENV_EXAMPLE)["FLASHVSR_MAX_UPLOAD_BYTES"])
    nginx_limit = parse_size(re.search(r"client_max_body_size\s+(\w+);", NGINX_CONF.read_text()).group(1))

    assert upload_limit + 64 * 1024 < nginx_limit <= upload_limit * 1.1


def test_nginx_internal_location_matches_prefix():
    environment = read_env_file(ENV_EXAMPLE)
    prefix = environment["FLASHVSR_X_ACCEL_REDIRECT_PREFIX"]
    block = re.search(rf"location {re.escape(prefix)} \{{(.*?)\}}", NGINX_CONF.read_text(), re.DOTALL)

    assert block, f"no nginx location for {prefix}"
    assert "internal;" in block.group(1)
    assert f"alias {environment['MEDIA_ROOT']}/;" in block.group(1)


def test_gpu_unit_pins_gpu_and_reconciles_first():
    environment = unit_values(UNITS["gpu"], "Environment")

    assert "CUDA_VISIBLE_DEVICES=%i" in environment
    assert "Q_CLUSTER_NAME=gpu" in environment
    assert any(
        command.endswith("manage.py reconcile_tasks") for command in unit_values(UNITS["gpu"], "ExecStartPre")
    )
    assert unit_values(UNITS["gpu"], "KillSignal") == ["SIGINT"]
    assert unit_values(UNITS["gpu"], "KillMode") == ["control-group"]
    assert int(unit_values(UNITS["gpu"], "TimeoutStopSec")[0]) >= 60


def test_cluster_units_name_configured_clusters():
    for role in ("gpu", "maintenance"):
        environment = unit_values(UNITS[role], "Environment")
        names = [item.split("=", 1)[1] for item in environment if item.startswith("Q_CLUSTER_NAME=")]
        assert names == [role]
        assert role in settings.Q_CLUSTER["ALT_CLUSTERS"]


def test_units_read_documented_environment_file():
    for path in UNITS.values():
        assert unit_values(path, "EnvironmentFile") == ["/etc/flashvsr/flashvsr.env"], path.name
        assert unit_values(path, "ReadWritePaths") == [read_env_file(ENV_EXAMPLE)["MEDIA_ROOT"]], path.name


def test_gunicorn_config_is_valid(tmp_path):
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        pytest.skip(f"gunicorn is not installed next to {sys.executable}")

    completed = subprocess.run(
        [
            str(gunicorn),
            "--check-config",
            "--config",
            "deploy/gunicorn.conf.py",
            "flashvsr_site.wsgi:application",
        ],
        cwd=REPO_ROOT,
        env=production_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
