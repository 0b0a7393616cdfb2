"""End-to-end flows in Chromium, with and without JavaScript: upload, follow the task, compare, download."""

from __future__ import annotations

import io
import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tasks_app import comparison
from tasks_app.models import Status, Task
from tests.browser.conftest import log_in
from tests.video.clips import make_clip, read_frame_index

pytestmark = pytest.mark.django_db(transaction=True)

CLIP_FRAMES = 20
CLIP_SIZE = (128, 72)
SCALE = 2


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "holiday clip.mp4", frames=CLIP_FRAMES, size=CLIP_SIZE)


def choose_lanczos(page) -> None:
    page.locator("select[name=variant]").select_option("lanczos")
    page.locator("select[name=scale]").select_option(str(SCALE))


def row_status(page, task: Task):
    return page.locator(f"#task-{task.pk} .status")


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_upload_to_download_with_javascript(
    live_server, user, worker, clip, open_browser, tmp_path, artifacts_dir
):
    page = open_browser().new_page()
    log_in(page, live_server)
    choose_lanczos(page)
    page.locator("input[name=video]").set_input_files(str(clip))

    prediction = page.locator("#upload-prediction")
    expected_size = f"{CLIP_SIZE[0] * SCALE}×{CLIP_SIZE[1] * SCALE}"
    page.wait_for_function("document.querySelector('#upload-prediction').textContent.includes('Output:')")
    assert expected_size in prediction.inner_text()
    assert "Estimated processing time" in prediction.inner_text()
    assert "estimate" in prediction.inner_text()

    page.evaluate(
        """window.uploadPercents = [];
        document.addEventListener('htmx:xhr:progress', () => window.uploadPercents.push(
            document.querySelector('#upload-progress progress').value));"""
    )
    page.locator("#upload-form button[type=submit]").click()
    page.locator("#upload-form .success").wait_for()
    assert 100 in page.evaluate("window.uploadPercents")
    task = Task.objects.get(owner=user)
    assert worker.queued == [str(task.pk)]
    assert row_status(page, task).inner_text() == "Queued"
    # The table polls while a task is queued.
    assert page.locator("#task-table[hx-trigger]").count() == 1

    assert worker.run_all() == [Status.SUCCEEDED]
    page.wait_for_function(
        f"document.querySelector('#task-{task.pk} .status').textContent.trim() === 'Succeeded'",
        timeout=15_000,
    )
    # Polling stops once nothing is active, and the one status region announced the change.
    page.locator("#task-table:not([hx-trigger])").wait_for(state="attached")
    page.locator("#messages .announcement").wait_for()
    assert page.locator("#messages").inner_text().strip() == "holiday clip.mp4: Succeeded"
    # The status panel refreshes its counts on the change as well.
    page.wait_for_function(
        "document.querySelector('#status-panel .task-counts').textContent.includes('Succeeded: 1')"
    )
    page.screenshot(path=str(artifacts_dir / "home-en.png"), full_page=True)

    page.locator(f"#task-link-{task.pk}").click()
    page.wait_for_url(re.compile(rf"/tasks/{task.pk}/$"))
    assert page.locator(".task-progress .status").inner_text() == "Succeeded"
    assert page.locator("progress").first.get_attribute("value") == "100"
    assert f"{CLIP_FRAMES} of {CLIP_FRAMES} frames" in page.locator(".progress-line").inner_text()

    after = page.locator("img.comparison-after")
    before = page.locator("img.comparison-before")
    page.wait_for_function(
        "[...document.querySelectorAll('.comparison img')].every(img => img.complete && img.naturalWidth > 0)"
    )
    assert after.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [
        CLIP_SIZE[0] * SCALE,
        CLIP_SIZE[1] * SCALE,
    ]
    assert before.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [
        CLIP_SIZE[0] * SCALE,
        CLIP_SIZE[1] * SCALE,
    ]

    slider = page.locator(".comparison input[type=range]")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    assert slider.input_value() == "45"
    assert page.locator(".comparison").evaluate("el => el.style.getPropertyValue('--split')") == "45%"

    for video in page.locator("video").all():
        video.evaluate(
            "v => v.readyState >= 1 || new Promise(ok => v.addEventListener('loadedmetadata', ok))"
        )
    durations = page.locator("video").evaluate_all("videos => videos.map(v => v.duration)")
    assert len(durations) == 2
    assert all(abs(duration - CLIP_FRAMES / 25) < 0.1 for duration in durations)
    # Seeking needs HTTP Range support from the source and result views.
    positions = page.locator("video").evaluate_all(
        """videos => Promise.all(videos.map(v => new Promise(ok => {
            v.addEventListener('seeked', () => ok(v.currentTime), {once: true});
            v.currentTime = 0.5;
        })))"""
    )
    assert positions == [0.5, 0.5]
    page.screenshot(path=str(artifacts_dir / "detail-en.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator(f"#download-{task.pk}").click()
    download = download_info.value
    assert download.suggested_filename == f"holiday clip_x{SCALE}.mp4"
    saved = tmp_path / "downloaded.mp4"
    download.save_as(saved)
    frames = decoded_frames(saved)
    assert len(frames) == CLIP_FRAMES
    assert frames[0].shape == (CLIP_SIZE[1] * SCALE, CLIP_SIZE[0] * SCALE, 3)
    # The comparison shows the same frame of source and result.
    compared_index = comparison.frame_index(CLIP_FRAMES)
    for kind in ("before", "after"):
        picture = np.asarray(Image.open(comparison.image_path(task, kind)).convert("RGB"))
        assert read_frame_index(picture) == compared_index
    page.goto("about:blank")


def test_upload_to_download_without_javascript(live_server, user, worker, clip, open_browser, tmp_path):
    context = open_browser(javascript=False)
    page = context.new_page()
    log_in(page, live_server)
    choose_lanczos(page)
    page.locator("input[name=video]").set_input_files(str(clip))
    page.locator("#upload-form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/")

    task = Task.objects.get(owner=user)
    assert row_status(page, task).inner_text() == "Queued"

    # The queued task's page says what it waits for and offers a refresh link in place of polling.
    page.locator(f"#task-details-{task.pk}").click()
    assert "Waiting for the GPU worker to start this task." in page.locator(".task-progress").inner_text()
    assert page.locator(".task-progress a.refresh-link").is_visible()
    page.go_back()

    assert worker.run_all() == [Status.SUCCEEDED]
    # Nothing polls without JavaScript: the refresh link reloads the table.
    assert row_status(page, task).inner_text() == "Queued"
    page.locator("a.refresh-link").click()
    assert row_status(page, task).inner_text() == "Succeeded"

    page.locator(f"#task-details-{task.pk}").click()
    page.wait_for_url(re.compile(rf"/tasks/{task.pk}/$"))
    # Without JavaScript the slider is hidden and both stills are shown whole.
    assert not page.locator(".comparison input[type=range]").is_visible()
    for kind in ("before", "after"):
        src = page.locator(f"img.comparison-{kind}").get_attribute("src")
        response = context.request.get(f"{live_server.url}{src}")
        assert response.status == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(response.body())).size == (CLIP_SIZE[0] * SCALE, CLIP_SIZE[1] * SCALE)

    href = page.locator(f"#download-{task.pk}").get_attribute("href")
    response = context.request.get(f"{live_server.url}{href}")
    assert response.status == 200
    saved = tmp_path / "downloaded.mp4"
    saved.write_bytes(response.body())
    frames = decoded_frames(saved)
    assert len(frames) == CLIP_FRAMES
    assert frames[0].shape == (CLIP_SIZE[1] * SCALE, CLIP_SIZE[0] * SCALE, 3)


def test_failed_task_shows_message(live_server, user, worker, clip, open_browser):
    page = open_browser().new_page()
    log_in(page, live_server)
    choose_lanczos(page)
    page.locator("input[name=video]").set_input_files(str(clip))
    page.locator("#upload-form button[type=submit]").click()
    page.locator("#upload-form .success").wait_for()
    task = Task.objects.get(owner=user)
    # The stored source breaks after the upload was accepted: the worker cannot decode it.
    Path(task.input_file.path).write_bytes(b"\x00" * 2048)

    assert worker.run_all() == [Status.FAILED]
    task.refresh_from_db()
    assert task.error_message
    page.wait_for_function(
        f"document.querySelector('#task-{task.pk} .status').textContent.trim() === 'Failed'", timeout=15_000
    )
    page.locator(f"#task-link-{task.pk}").click()
    page.wait_for_url(re.compile(rf"/tasks/{task.pk}/$"))
    alert = page.locator(".task-progress [role=alert]")
    assert alert.inner_text() == task.error_message
    assert page.locator(f"#retry-task-progress-{task.pk}").is_visible()
    assert page.locator(".comparison").count() == 0


@pytest.mark.parametrize("fragment", ["task-table", "task-progress"])
def test_focus_survives_polling(live_server, user, make_task, open_browser, fragment):
    queued = make_task(status=Status.QUEUED, variant="lanczos")
    page = open_browser().new_page()
    log_in(page, live_server)
    if fragment == "task-progress":
        page.goto(f"{live_server.url}/tasks/{queued.pk}/")
    button_id = f"cancel-{fragment}-{queued.pk}"
    page.locator(f"#{button_id}").focus()

    # Wait for two polls (every 2 s) to replace the fragment that contains the button.
    for _ in range(2):
        with page.expect_response(lambda response: response.request.headers.get("hx-target") == fragment):
            pass
    page.wait_for_timeout(200)
    assert page.evaluate("document.activeElement.id") == button_id

    Task.objects.filter(pk=queued.pk).update(status=Status.CANCELLED)
    page.locator(f"#{fragment}:not([hx-trigger])").wait_for(state="attached", timeout=10_000)
    page.goto("about:blank")


def jpeg_bytes(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_live_preview_refreshes_while_running(live_server, user, make_task, open_browser):
    from django.core.files.base import ContentFile

    task = make_task(
        status=Status.RUNNING,
        variant="lanczos",
        processed_frames=5,
        total_frames=40,
        progress=5 / 40,
        frames_per_second=2.0,
        eta_seconds=17.5,
    )
    task.preview_file.save("ignored", ContentFile(jpeg_bytes((32, 24), (220, 20, 20))), save=True)
    page = open_browser().new_page()
    log_in(page, live_server)
    page.goto(f"{live_server.url}/tasks/{task.pk}/")

    preview = page.locator(".live-preview img")
    page.wait_for_function("document.querySelector('.live-preview img').naturalWidth === 32")
    progress_text = page.locator(".progress-line").inner_text()
    assert "5 of 40 frames" in progress_text
    assert "2.0 frames/s" in progress_text
    assert "0:18 left" in progress_text
    assert page.locator(".progress-line progress").get_attribute("value") == "12"

    # The worker writes a newer preview and saves progress: the next poll shows both.
    with open(task.preview_file.path, "wb") as handle:
        handle.write(jpeg_bytes((48, 36), (20, 20, 220)))
    Task.objects.filter(pk=task.pk).update(processed_frames=20, progress=0.5)
    page.wait_for_function("document.querySelector('.live-preview img').naturalWidth === 48", timeout=10_000)
    assert preview.get_attribute("src").endswith("?frame=20")
    assert "20 of 40 frames" in page.locator(".progress-line").inner_text()

    Task.objects.filter(pk=task.pk).update(
        status=Status.FAILED, error_message="The source broke at frame 21."
    )
    page.locator(".task-progress [role=alert]").wait_for(timeout=10_000)
    assert page.locator(".task-progress [role=alert]").inner_text() == "The source broke at frame 21."
    assert page.locator("#task-progress[hx-trigger]").count() == 0
    assert page.locator(".live-preview").count() == 0
    page.locator("#messages .announcement").wait_for()
    assert page.locator("#messages").inner_text().strip() == "clip.mp4: Failed"


def test_dropped_file_over_limit_flagged(live_server, user, clip, open_browser, settings):
    # 128x72 at 4x is 147,456 pixels and at 2x 36,864: only 2x fits under this limit.
    settings.FLASHVSR_MAX_OUTPUT_PIXELS = 40_000
    page = open_browser().new_page()
    log_in(page, live_server)
    page.locator("select[name=scale]").select_option("4")
    page.locator(".drop-zone").evaluate(
        """(zone, bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.mp4', {type: 'video/mp4'}));
            const drop = new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true});
            zone.dispatchEvent(drop);
        }""",
        list(clip.read_bytes()),
    )
    assert page.locator("input[name=video]").evaluate("input => input.files[0].name") == "dropped.mp4"
    prediction = page.locator("#upload-prediction.problem")
    prediction.wait_for()
    assert (
        "The output would be 512×288, over the limit of 0.04 megapixels per frame." in prediction.inner_text()
    )
    assert "Choose scale 2× or smaller." in prediction.inner_text()

    page.locator("select[name=scale]").select_option("2")
    page.locator("#upload-prediction:not(.problem)").wait_for()
    assert "Output: 256×144" in page.locator("#upload-prediction").inner_text()


def test_rejected_upload_shows_error_in_form(live_server, user, worker, open_browser, tmp_path, media_root):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is a text file, not a video\n" * 50)
    page = open_browser().new_page()
    log_in(page, live_server)
    choose_lanczos(page)
    page.locator("input[name=video]").set_input_files(str(not_video))
    page.locator("#upload-form button[type=submit]").click()

    error = page.locator("#upload-form [role=alert]")
    error.wait_for()
    assert "not a video" in error.inner_text().lower() or "cannot be read" in error.inner_text().lower()
    assert Task.objects.count() == 0
    assert worker.queued == []
    assert page.locator("#upload-form button[type=submit]").is_enabled()
    assert sorted(path.name for path in media_root.rglob("*") if path.is_file()) == []


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(control => !['hidden', 'submit'].includes(control.type))
    .filter(control => control.labels.length === 0 && !control.getAttribute('aria-label'))
    .map(control => control.name || control.id)"""


def test_every_control_has_label(live_server, user, make_task, open_browser):
    finished = make_task(status=Status.SUCCEEDED, variant="lanczos")
    page = open_browser().new_page()
    log_in(page, live_server)
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    page.goto(f"{live_server.url}/tasks/{finished.pk}/")
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.locator("[role=status]").count() == 1
    assert page.locator("[aria-live]").count() == 1
    page.goto("about:blank")
