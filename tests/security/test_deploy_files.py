"""The files in deploy/ agree with the settings and with docs/production.env.example."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware

from flashvsr_site.env import env_bool, env_int, parse_size

from .conftest import REPO_ROOT
from .test_production_settings import ENV_EXAMPLE, production_environment, read_env_file

DEPLOY = REPO_ROOT / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "flashvsr.conf"
MANAGE_SCRIPT = DEPLOY / "flashvsr-manage"
DEPLOYMENT_GUIDE = REPO_ROOT / "docs" / "deployment.md"
UNITS = {
    "web": DEPLOY / "systemd" / "flashvsr-web.service",
    "gpu": DEPLOY / "systemd" / "flashvsr-gpu@.service",
    "maintenance": DEPLOY / "systemd" / "flashvsr-maintenance.service",
}


def unit_values(path, key: str, section: str = "[Service]") -> list[str]:
    """Return every value of `key` in `section`, in order, because systemd allows repeated keys."""
    values, current = [], ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line
        elif current == section and line.startswith(f"{key}="):
            values.append(line.split("=", 1)[1])
    return values


def nginx_server_blocks() -> list[str]:
    """Return the body of every top-level `server { ... }` block of the nginx site, comments removed."""
    text = re.sub(r"#[^\n]*", "", NGINX_CONF.read_text())
    blocks = []
    for match in re.finditer(r"^server \{", text, re.MULTILINE):
        depth = 0
        for index in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            if depth == 0:
                blocks.append(text[match.end() : index])
                break
    return blocks


def nginx_server_listening_on(port: int) -> str:
    blocks = [block for block in nginx_server_blocks() if re.search(rf"listen {port}\b", block)]
    assert len(blocks) == 1, f"expected one nginx server on port {port}, found {len(blocks)}"
    return blocks[0]


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


def test_units_wait_for_shared_folders():
    environment = read_env_file(ENV_EXAMPLE)
    media = environment["MEDIA_ROOT"]
    models = str(Path(environment["FLASHVSR_MODEL_DIR"]).parent)

    for role, path in UNITS.items():
        mounts = " ".join(unit_values(path, "RequiresMountsFor", section="[Unit]")).split()
        assert media in mounts, path.name
        if role != "maintenance":
            assert models in mounts, path.name


def test_nginx_port_80_serves_acme_challenge():
    server = nginx_server_listening_on(80)
    challenge = re.search(r"location /\.well-known/acme-challenge/ \{([^}]*)\}", server)
    certbot = re.search(r"certbot certonly --webroot -w (\S+)", DEPLOYMENT_GUIDE.read_text())

    assert challenge, "the port-80 server has no acme-challenge location"
    assert certbot, "the deployment guide has no certbot webroot command"
    assert f"root {certbot.group(1)};" in challenge.group(1)
    assert re.search(r"location / \{\s*return 301 https://\$host\$request_uri;\s*\}", server)
    # A server-level return runs before nginx picks a location, so it would redirect the challenge too.
    assert "return" not in re.sub(r"location [^{]*\{[^}]*\}", "", server)


def test_nginx_download_hsts_matches_django(monkeypatch, rf, settings):
    environment = read_env_file(ENV_EXAMPLE)
    for name in ("SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD"):
        monkeypatch.setenv(name, environment[name])
    settings.SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    settings.SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    django_response = SecurityMiddleware(lambda request: HttpResponse())(rf.get("/", secure=True))
    prefix = environment["FLASHVSR_X_ACCEL_REDIRECT_PREFIX"]
    block = re.search(rf"location {re.escape(prefix)} \{{(.*?)\}}", NGINX_CONF.read_text(), re.DOTALL)

    nginx_header = re.search(r'add_header Strict-Transport-Security "([^"]+)" always;', block.group(1))

    assert nginx_header, f"no Strict-Transport-Security header in location {prefix}"
    assert nginx_header.group(1) == django_response["Strict-Transport-Security"]


def test_gunicorn_config_names_are_settings():
    from gunicorn.config import Config

    names = {
        name
        for name, value in runpy.run_path(str(DEPLOY / "gunicorn.conf.py")).items()
        if not name.startswith("__") and not isinstance(value, types.ModuleType)
    }
    unknown = names - set(Config().settings)

    assert sorted(unknown) == [], "gunicorn ignores these names without a warning"
    assert runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["control_socket_disable"] is True


def write_fake_sudo(folder: Path) -> Path:
    """Write a `sudo` that records the -u user in `sudo-user` and runs the command as the current user."""
    folder.mkdir()
    sudo = folder / "sudo"
    sudo.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "-u" ] || exit 64\n'
        f'printf %s "$2" > {folder / "sudo-user"}\n'
        "shift 2\n"
        'exec "$@"\n'
    )
    sudo.chmod(0o755)
    return sudo


def write_app_folder(folder: Path) -> Path:
    """Lay out `folder` like /srv/flashvsr/app: manage.py of this checkout and a .venv/bin/python."""
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / "manage.py").symlink_to(REPO_ROOT / "manage.py")
    venv_python = folder / ".venv" / "bin" / "python"
    venv_python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    venv_python.chmod(0o755)
    return folder


def write_environment_file(folder: Path) -> Path:
    """Copy the example environment file with its paths moved into `folder`."""
    (folder / "secret_key").write_text("k" * 64 + "\n")
    text = ENV_EXAMPLE.read_text()
    for name, value in {
        "SECRET_KEY_FILE": folder / "secret_key",
        "MEDIA_ROOT": folder / "media",
        "STATIC_ROOT": folder / "staticfiles",
    }.items():
        text = re.sub(rf"^{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
    path = folder / "flashvsr.env"
    path.write_text(text)
    return path


def write_manage_script(folder: Path, app: Path, environment_file: Path) -> Path:
    """Copy deploy/flashvsr-manage with its APP_DIR and ENV_FILE pointing at `app` and `environment_file`."""
    text = MANAGE_SCRIPT.read_text()
    text = re.sub(r"^APP_DIR=.*$", f"APP_DIR={app}", text, flags=re.MULTILINE)
    text = re.sub(r"^ENV_FILE=.*$", f"ENV_FILE={environment_file}", text, flags=re.MULTILINE)
    path = folder / "flashvsr-manage"
    path.write_text(text)
    return path


def test_flashvsr_manage_loads_environment(tmp_path):
    app = write_app_folder(tmp_path / "app")
    script = write_manage_script(tmp_path, app, write_environment_file(tmp_path))
    fake_sudo = write_fake_sudo(tmp_path / "bin")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = (
        "import os; from django.conf import settings; "
        "print(settings.SECURE_PROXY_SSL_HEADER, settings.MEDIA_ROOT, settings.DEBUG, oct(os.umask(0)))"
    )

    completed = subprocess.run(
        ["sh", str(script), "shell", "--verbosity", "0", "-c", command],
        cwd=elsewhere,
        env={"PATH": f"{fake_sudo.parent}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (fake_sudo.parent / "sudo-user").read_text() == "flashvsr"
    assert completed.stdout.split() == [
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        str(tmp_path / "media"),
        "False",
        "0o27",
    ]
