"""English messages from the gpu package and the worker are shown in the request's language."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from gpu.params import InputError
from gpu.video.probe import probe
from tasks_app.localized import STORED_MESSAGES, localize
from tasks_app.models import Status, Task
from tests.web.clips import write_audio_only, write_video


def probe_message(path) -> str:
    with pytest.raises(InputError) as raised:
        probe(path)
    return raised.value.user_message


def test_probe_rejections_translated(tmp_path):
    text_file = tmp_path / "notes.mp4"
    text_file.write_text("not a video\n" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = write_audio_only(tmp_path / "tone.m4a")
    expected = {
        text_file: "该文件不是可读取的视频文件",
        empty: "文件为空（0 字节）",
        audio: "该文件不含视频流（只有音频）",
    }
    for path, chinese in expected.items():
        message = probe_message(path)
        with translation.override("zh-hans"):
            assert chinese in localize(message), message
        with translation.override("en"):
            assert localize(message) == message


def test_values_carried_into_translation():
    message = (
        "The input could not be decoded at frame 12. The file may be damaged; "
        "re-export it or upload another copy."
    )
    with translation.override("zh-hans"):
        assert (
            localize(message)
            == "输入视频在第 12 帧处无法解码。文件可能已损坏；请重新导出，或上传另一份副本。"
        )


def test_worker_timeout_message_translated():
    message = (
        "The task was stopped after running for the time limit of 7200 seconds, "
        "or because the worker shut down. Retry it, choose a faster variant, or upload a shorter video."
    )
    with translation.override("zh-hans"):
        assert localize(message).startswith("任务已运行到 7200 秒的时间上限")


def test_unknown_message_unchanged():
    with translation.override("zh-hans"):
        assert localize("Something nobody listed went wrong.") == "Something nobody listed went wrong."
        assert localize("") == ""


def test_every_stored_message_translated():
    with translation.override("zh-hans"):
        untranslated = [template for template in STORED_MESSAGES if translation.gettext(template) == template]
    assert untranslated == []


@pytest.mark.django_db
def test_detail_page_translates_error_and_notes(user_client, make_task):
    task = make_task(
        status=Status.FAILED,
        error_message="Writing the output video failed. Check that the disk has free space, then retry.",
        notes=["Subtitle stream 3 (hdmv_pgs_subtitle) cannot be stored in MP4; choose MKV to keep it."],
    )
    page = user_client.get(reverse("task_detail", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="zh-CN")
    content = page.content.decode()
    assert "写入输出视频失败。请确认磁盘有可用空间后重试。" in content
    assert "字幕流 3（hdmv_pgs_subtitle）无法存入 MP4；如需保留，请选择 MKV。" in content


@pytest.mark.django_db
def test_upload_rejection_translated(user_client, tmp_path):
    text_file = tmp_path / "notes.mp4"
    text_file.write_text("not a video\n" * 100)
    with text_file.open("rb") as handle:
        response = user_client.post(
            reverse("task_create"), {"variant": "lanczos", "video": handle}, HTTP_ACCEPT_LANGUAGE="zh-CN"
        )
    assert response.status_code == 200
    assert "该文件不是可读取的视频文件" in response.content.decode()


@pytest.mark.django_db
def test_valid_clip_accepted_in_chinese(user_client, tmp_path):
    clip = write_video(tmp_path / "clip.mp4")
    with clip.open("rb") as handle:
        response = user_client.post(
            reverse("task_create"),
            {"variant": "lanczos", "scale": 2, "video": handle},
            HTTP_ACCEPT_LANGUAGE="zh-CN",
        )
    assert response.status_code == 302
    assert Task.objects.filter(original_filename="clip.mp4", status=Status.QUEUED).count() == 1
