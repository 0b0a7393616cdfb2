import pytest
from django.core.exceptions import ImproperlyConfigured

from flashvsr_site.env import (
    database_from_url,
    env_bool,
    env_bytes,
    env_float,
    env_int,
    env_list,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1048576),
        ("512MB", 512 * 1024**2),
        ("2GB", 2 * 1024**3),
        ("1.5G", 1536 * 1024**2),
        ("64 KiB", 65536),
        ("0", 0),
    ],
)
def test_parse_size_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "2 GBs", "-1", "ten", "1e9"])
def test_parse_size_rejects_malformed(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_env_bytes_names_variable_on_error(monkeypatch):
    monkeypatch.setenv("FLASHVSR_MAX_UPLOAD_BYTES", "2 parsecs")
    with pytest.raises(ImproperlyConfigured, match="FLASHVSR_MAX_UPLOAD_BYTES='2 parsecs'"):
        env_bytes("FLASHVSR_MAX_UPLOAD_BYTES", 1)


def test_env_int_bounds(monkeypatch):
    monkeypatch.setenv("SOME_INT", "52")
    with pytest.raises(ImproperlyConfigured, match="at most 51"):
        env_int("SOME_INT", 18, minimum=0, maximum=51)
    monkeypatch.setenv("SOME_INT", "abc")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("SOME_INT", 18)
    monkeypatch.delenv("SOME_INT")
    assert env_int("SOME_INT", 18) == 18


def test_env_float_bounds(monkeypatch):
    monkeypatch.setenv("SOME_RATIO", "4.5")
    with pytest.raises(ImproperlyConfigured, match="at most 4.0"):
        env_float("SOME_RATIO", 2.0, minimum=0.5, maximum=4.0)
    monkeypatch.setenv("SOME_RATIO", "0.25")
    with pytest.raises(ImproperlyConfigured, match="at least 0.5"):
        env_float("SOME_RATIO", 2.0, minimum=0.5, maximum=4.0)
    monkeypatch.setenv("SOME_RATIO", "1.5")
    assert env_float("SOME_RATIO", 2.0, minimum=0.5, maximum=4.0) == 1.5


def test_env_bool_values(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    assert env_bool("SOME_FLAG", False) is True
    monkeypatch.setenv("SOME_FLAG", "0")
    assert env_bool("SOME_FLAG", True) is False
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)


def test_env_list_drops_empty_items(monkeypatch):
    monkeypatch.setenv("SOME_LIST", "a.example, ,b.example,")
    assert env_list("SOME_LIST", []) == ["a.example", "b.example"]


def test_database_url_postgres(tmp_path):
    database = database_from_url("postgres://user:p%40ss@db.local:5433/flashvsr", base_dir=tmp_path)
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == ("flashvsr", "user", "p@ss")
    assert (database["HOST"], database["PORT"]) == ("db.local", "5433")


def test_database_url_sqlite_relative_and_absolute(tmp_path):
    relative = database_from_url("sqlite:///var/db.sqlite3", base_dir=tmp_path)
    assert relative["NAME"] == str(tmp_path / "var" / "db.sqlite3")
    assert relative["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in relative["OPTIONS"]["init_command"]
    absolute = database_from_url("sqlite:////srv/db.sqlite3", base_dir=tmp_path)
    assert absolute["NAME"] == "/srv/db.sqlite3"


@pytest.mark.parametrize("url", ["mysql://host/db", "postgres://host", "sqlite://"])
def test_database_url_rejects_unsupported(url, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_from_url(url, base_dir=tmp_path)


def run_settings_import(**env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    clean = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG")}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import flashvsr_site.settings"],
        cwd=Path(__file__).resolve().parents[2],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_require_secret_key_unless_debug():
    without_key = run_settings_import(DEBUG="0")
    assert without_key.returncode != 0
    assert "SECRET_KEY is not set" in without_key.stderr
    assert run_settings_import(DEBUG="1").returncode == 0


def test_settings_reject_unknown_preload_variant():
    result = run_settings_import(DEBUG="1", MODEL_VARIANTS_TO_PRELOAD="tiny,huge")
    assert result.returncode != 0
    assert "MODEL_VARIANTS_TO_PRELOAD lists unknown variants huge" in result.stderr
