import stat
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run(credentials):
    out = StringIO()
    call_command("ensure_local_user", "--credentials-file", str(credentials), stdout=out)
    return out.getvalue()


def test_creates_user_once_and_prints_login_again(tmp_path, django_user_model):
    credentials = tmp_path / "var" / "local-login.txt"
    first = run(credentials)
    lines = dict(line.split(": ", 1) for line in credentials.read_text().splitlines())

    assert "Created the user 'admin'" in first
    assert f"password: {lines['password']}" in first
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert authenticate(username="admin", password=lines["password"]) is not None

    second = run(credentials)
    assert "Created" not in second
    assert f"password: {lines['password']}" in second
    assert django_user_model.objects.count() == 1


def test_existing_users_without_file_get_hint(tmp_path, user):
    output = run(tmp_path / "login.txt")
    assert "createsuperuser" in output
    assert not (tmp_path / "login.txt").exists()
