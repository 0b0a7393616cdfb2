"""Language choice: from Accept-Language, switched with the form on every page, remembered in a cookie."""

from __future__ import annotations

import html
import re

import pytest
from django.conf import settings
from django.urls import reverse

from tasks_app.models import Status
from tests.i18n.po import read_catalogue
from tests.i18n.test_catalogue import CATALOGUE

pytestmark = pytest.mark.django_db

TAG = re.compile(r"<[^>]+>")
SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def visible_text(response) -> str:
    text = SCRIPT.sub(" ", response.content.decode())
    return html.unescape(TAG.sub(" ", text))


def english_leftovers(text: str) -> list[str]:
    """Return the catalogue's English messages that appear word for word in `text`."""
    found = []
    for entry in read_catalogue(CATALOGUE):
        if entry.is_header or entry.msgstr == [entry.msgid] or "%" in entry.msgid or "{" in entry.msgid:
            continue
        if re.search(rf"(?<![\w-]){re.escape(entry.msgid)}(?![\w-])", text):
            found.append(entry.msgid)
    return found


def test_accept_language_chooses_chinese(user_client):
    response = user_client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in response.content.decode()
    assert "上传并放大" in visible_text(response)


def test_accept_language_english_by_default(user_client):
    response = user_client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="de-DE")
    assert '<html lang="en">' in response.content.decode()
    assert "Upload and upscale" in visible_text(response)


def test_language_switch_is_remembered(user_client):
    response = user_client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("home")}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    page = user_client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="zh-hans">' in page.content.decode()


def test_every_page_has_language_form(client, user_client, make_task):
    task = make_task(status=Status.SUCCEEDED)
    pages = [reverse("home"), reverse("task_detail", args=[task.pk])]
    for url in pages:
        assert 'action="/i18n/setlang/"' in user_client.get(url).content.decode(), url
    client.logout()
    assert 'action="/i18n/setlang/"' in client.get(reverse("login")).content.decode()


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING, Status.SUCCEEDED, Status.FAILED])
def test_chinese_pages_have_no_english_message(user_client, make_task, status):
    task = make_task(
        status=status,
        total_frames=40,
        processed_frames=10,
        frames_per_second=2.5,
        eta_seconds=12,
        notes=[],
        source_metadata={
            "width": 64,
            "height": 48,
            "frame_rate": [25, 1],
            "duration": 1.6,
            "codec": "h264",
            "pix_fmt": "yuv420p",
            "frame_count": 40,
            "audio": [],
            "subtitles": [],
        },
    )
    headers = {"HTTP_ACCEPT_LANGUAGE": "zh-CN"}
    for url in (reverse("home"), reverse("task_detail", args=[task.pk])):
        response = user_client.get(url, **headers)
        assert response.status_code == 200
        assert english_leftovers(visible_text(response)) == [], url


def test_english_page_shows_catalogue_messages(user_client, make_task):
    """The leftover check above finds English messages when they are there."""
    task = make_task(status=Status.FAILED)
    response = user_client.get(reverse("task_detail", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="en")
    leftovers = english_leftovers(visible_text(response))
    assert "Parameters" in leftovers
    assert "Retry" in leftovers


def test_chinese_login_page_has_no_english_message(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert "登录" in visible_text(response)
    assert english_leftovers(visible_text(response)) == []


def test_upload_error_is_translated(user_client):
    response = user_client.post(reverse("task_create"), {"variant": "lanczos"}, HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert "请选择要上传的视频文件。" in visible_text(response)
