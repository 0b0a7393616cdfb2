"""English messages from the gpu package and the worker are shown in the request's language."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from gpu.params import InputError
from gpu.video.probe import probe
from tasks_app.localized import STORED_MESSAGES, localize
from tasks_app.models import Status, Task
from tests.video.clips import make_audio_file, make_clip


def probe_message(path) -> str:
    with pytest.raises(InputError) as raised:
        probe(path)
    return raised.value.user_message


def test_probe_rejections_translated(tmp_path):
    text_file = tmp_path / "notes.mp4"
    text_file.write_text("not a video\n" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = make_audio_file(tmp_path / "tone.m4a")
    expected = {
        text_file: "该文件不是可读取的视频文件",
        empty: "文件为空（0 字节）",
        audio: "该文件不含视频流（仅含音频）",
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
        "The task was stopped because it ran longer than the time limit of 7200 seconds. "
        "A retry would stop at the same limit, so upload a shorter clip or choose a smaller scale "
        "or a faster variant."
    )
    with translation.override("zh-hans"):
        assert localize(message).startswith("任务运行时间超过了 7200 秒的上限")


def test_weight_summaries_translated_part_by_part():
    with translation.override("zh-hans"):
        assert localize("not ready: a.safetensors is missing; b.ckpt is missing") == (
            "未就绪：缺少 a.safetensors；缺少 b.ckpt"
        )
        assert localize("ready: 4 files, release weights, verified") == "就绪：4 个文件，正式权重，已校验"


def test_message_with_semicolon_translated_whole():
    message = "The file has 2 video streams; only stream 0 is upscaled."
    with translation.override("zh-hans"):
        assert localize(message) == "该文件有 2 个视频流，只处理第 0 号流。"


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
    clip = make_clip(tmp_path / "clip.mp4", frames=5, fps=10)
    with clip.open("rb") as handle:
        response = user_client.post(
            reverse("task_create"),
            {"variant": "lanczos", "scale": 2, "video": handle},
            HTTP_ACCEPT_LANGUAGE="zh-CN",
        )
    assert response.status_code == 302
    assert Task.objects.filter(original_filename="clip.mp4", status=Status.QUEUED).count() == 1


# WeightLoadError's argument is the technical detail; its message for users is a constant.
USER_MESSAGE_CALLS = {"InputError", "DecodeError", "OutputError", "ModelError", "append"}
# Messages assembled from parts, checked by calling their builders in the tests below.
ASSEMBLED = {"The GPU ran out of memory. To fix it, X."}


def gpu_user_messages() -> list[tuple[str, str]]:
    """Return (location, sample text) for each message the gpu package raises to users or adds as a note.

    A sample replaces every f-string value with "X". Only string literals are collected: a message built in a
    variable first is not seen here.
    """
    samples = []
    for path in sorted((Path(settings.BASE_DIR) / "gpu").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args and _call_name(node) in USER_MESSAGE_CALLS):
                continue
            if _call_name(node) == "append" and not _appends_to_notes(node):
                continue
            sample = _sample_text(node.args[0])
            if sample is not None:
                samples.append((f"{path.relative_to(settings.BASE_DIR)}:{node.lineno}", sample))
    return samples


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _appends_to_notes(node: ast.Call) -> bool:
    target = node.func.value
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name == "notes"


def _sample_text(argument: ast.expr) -> str | None:
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value
    if isinstance(argument, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "X" for part in argument.values)
    return None


def test_gpu_user_messages_listed():
    samples = gpu_user_messages()
    assert len(samples) > 20
    with translation.override("zh-hans"):
        unlisted = [
            (where, text) for where, text in samples if text not in ASSEMBLED and localize(text) == text
        ]
    assert unlisted == [], "add these messages to tasks_app/localized.py and translate them"


@pytest.mark.parametrize("variant", ["tiny_long", "tiny", "full"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_out_of_memory_advice_translated(variant, scale):
    from gpu.upscalers.flashvsr import _out_of_memory

    message = _out_of_memory(variant, scale, "detail").user_message
    with translation.override("zh-hans"):
        translated = localize(message)
    assert translated != message
    assert "GPU 显存不足" in translated
