"""Fixtures for the browser tests: Debian's Chromium through Playwright's sync API, and a test-driven worker.

The upload's on-commit enqueue is replaced by a list of queued task ids, and `worker.run_all()` runs
tasks_app.jobs.run_upscale for them in the test thread. The browser so shows the row queued until the
test runs the job.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "alice-password-1"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)"))


@pytest.fixture(scope="package")
def playwright_driver():
    """Start Playwright for the browser tests only; its event loop is stopped before other packages run."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, so Django rejects ORM calls unless this is set.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as driver:
            yield driver
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_browser(playwright_driver, tmp_path):
    """Return a factory of browser contexts. Each gets a fresh profile folder and is closed after the test."""
    contexts = []

    def open_context(*, javascript: bool = True, locale: str = "en-US"):
        profile = tmp_path / f"chromium-profile-{len(contexts)}"
        context = playwright_driver.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            java_script_enabled=javascript,
            locale=locale,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        # Leave every page blank first, so no poll reaches the server while the test database is flushed.
        for page in context.pages:
            page.goto("about:blank")
        context.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


class TestWorker:
    """Queue stand-in: records enqueued task ids and runs them on request, in the test thread."""

    def __init__(self) -> None:
        self.queued: list[str] = []

    def enqueue(self, task) -> str:
        self.queued.append(str(task.pk))
        return f"test-{task.pk}"

    def run_all(self) -> list[str]:
        from tasks_app.jobs import run_upscale

        outcomes = [run_upscale(task_id) for task_id in self.queued]
        self.queued.clear()
        return outcomes


@pytest.fixture
def worker(monkeypatch):
    test_worker = TestWorker()
    monkeypatch.setattr("tasks_app.services.enqueue_upscale", test_worker.enqueue)
    return test_worker


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def log_in(page, live_server, username: str = "alice", password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form[action='/login/'] button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/")
