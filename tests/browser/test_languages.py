"""Chinese and English in the browser: language from the browser's locale, the switch form, screenshots."""

from __future__ import annotations

import re

import pytest

from tasks_app.models import Status, Task
from tests.browser.conftest import log_in
from tests.browser.test_flows import choose_lanczos
from tests.video.clips import make_clip

pytestmark = pytest.mark.django_db(transaction=True)


def test_chinese_labels_and_switch_to_english(
    live_server, user, worker, open_browser, tmp_path, artifacts_dir
):
    clip = make_clip(tmp_path / "城市夜景.mp4", frames=12, size=(96, 64))
    page = open_browser(locale="zh-CN").new_page()

    page.goto(f"{live_server.url}/login/")
    assert page.locator("h1").inner_text() == "登录"
    assert page.locator("label[for=id_username]").inner_text() == "用户名"
    log_in(page, live_server)

    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("#upload-heading").inner_text() == "放大视频"
    assert page.locator("label[for=id_video]").inner_text() == "视频文件"
    assert page.locator("#upload-form button[type=submit]").inner_text() == "上传并放大"

    choose_lanczos(page)
    page.locator("input[name=video]").set_input_files(str(clip))
    page.wait_for_function("document.querySelector('#upload-prediction').textContent.includes('输出：')")
    assert "预计处理时间" in page.locator("#upload-prediction").inner_text()
    page.locator("#upload-form button[type=submit]").click()
    page.locator("#upload-form .success").wait_for()
    task = Task.objects.get(owner=user)
    assert page.locator(f"#task-{task.pk} .status").inner_text() == "排队中"

    assert worker.run_all() == [Status.SUCCEEDED]
    page.wait_for_function(
        f"document.querySelector('#task-{task.pk} .status').textContent.trim() === '已完成'", timeout=15_000
    )
    page.locator("#messages .announcement").wait_for()
    assert page.locator("#messages").inner_text().strip() == "城市夜景.mp4：已完成"
    page.screenshot(path=str(artifacts_dir / "home-zh.png"), full_page=True)

    page.locator(f"#task-link-{task.pk}").click()
    page.wait_for_url(re.compile(rf"/tasks/{task.pk}/$"))
    assert page.locator("#comparison-heading").inner_text() == "处理前后对比"
    assert page.locator("#params-heading").inner_text() == "参数"
    page.wait_for_function(
        "[...document.querySelectorAll('.comparison img')].every(img => img.complete && img.naturalWidth > 0)"
    )
    page.screenshot(path=str(artifacts_dir / "detail-zh.png"), full_page=True)

    page.locator("#language-select").select_option("en")
    page.locator(".language-form button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/tasks/{task.pk}/$"))
    assert page.locator("#comparison-heading").inner_text() == "Before and after"
    # The choice is kept in a cookie: a later visit stays English although the browser asks for Chinese.
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#upload-form button[type=submit]").inner_text() == "Upload and upscale"
    page.goto("about:blank")
