"""download_weights against a local folder: the hub download and the URL opener are replaced, no network."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import huggingface_hub
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gpu import assets
from tasks_app.management.commands import download_weights


class FakeHub:
    """Serves hf_hub_download from a local folder and records the requests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[tuple[str, str]] = []

    def __call__(self, repo_id, filename, *, revision=None, local_dir=None, **kwargs):
        self.requests.append((repo_id, filename))
        target = Path(local_dir) / filename
        shutil.copyfile(self.folder / filename, target)
        return str(target)


class FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes, status: int) -> None:
        super().__init__(payload)
        self.status = status
        self.headers = {"Content-Length": str(len(payload))}


class FakeOpener:
    """Serves one URL from bytes and honours Range requests, as raw.githubusercontent.com does."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.requests = []

    def __call__(self, request, timeout=None):
        self.requests.append(request)
        requested = request.get_header("Range")
        if requested:
            start = int(requested.removeprefix("bytes=").rstrip("-"))
            return FakeResponse(self.payload[start:], 206)
        return FakeResponse(self.payload, 200)


@pytest.fixture
def fake_sources(reduced_model_dir, monkeypatch):
    hub = FakeHub(reduced_model_dir)
    opener = FakeOpener((reduced_model_dir / assets.PROMPT_FILE).read_bytes())
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    monkeypatch.setattr(download_weights, "urlopen", opener)
    return hub, opener


def test_downloads_every_file(tmp_path, reduced_model_dir, fake_sources, settings, capsys):
    hub, opener = fake_sources
    settings.FLASHVSR_MODEL_DIR = tmp_path / "models"

    call_command("download_weights")

    for name in assets.ALL_FILES:
        assert (tmp_path / "models" / name).read_bytes() == (reduced_model_dir / name).read_bytes()
    assert [name for _, name in hub.requests] == list(download_weights.HUB_FILES)
    assert {repo for repo, _ in hub.requests} == {"JunhaoZhuang/FlashVSR-v1.1"}
    assert opener.requests[0].full_url == download_weights.PROMPT_URL
    assert "are complete" in capsys.readouterr().out
    assert assets.report(tmp_path / "models").ready("full")


def test_variant_fetches_only_its_files(tmp_path, fake_sources):
    hub, _ = fake_sources

    call_command("download_weights", "--variant", "tiny_long", "--model-dir", str(tmp_path))

    assert sorted(name for _, name in hub.requests) == sorted(
        [assets.DIT_FILE, assets.LQ_PROJ_FILE, assets.TC_DECODER_FILE]
    )
    assert not (tmp_path / assets.VAE_FILE).exists()


def test_complete_files_are_skipped(tmp_path, reduced_model_dir, fake_sources):
    hub, opener = fake_sources
    shutil.copytree(reduced_model_dir, tmp_path, dirs_exist_ok=True)
    (tmp_path / assets.TC_DECODER_FILE).write_bytes(b"cut")

    call_command("download_weights", "--model-dir", str(tmp_path))

    assert hub.requests == [("JunhaoZhuang/FlashVSR-v1.1", assets.TC_DECODER_FILE)]
    assert opener.requests == []
    assert assets.report(tmp_path).ready("tiny")


def test_prompt_download_resumes(tmp_path, reduced_model_dir, fake_sources):
    _, opener = fake_sources
    shutil.copytree(reduced_model_dir, tmp_path, dirs_exist_ok=True)
    (tmp_path / assets.PROMPT_FILE).unlink()
    payload = (reduced_model_dir / assets.PROMPT_FILE).read_bytes()
    (tmp_path / (assets.PROMPT_FILE + ".part")).write_bytes(payload[:1000])

    call_command("download_weights", "--model-dir", str(tmp_path))

    assert opener.requests[0].get_header("Range") == "bytes=1000-"
    assert (tmp_path / assets.PROMPT_FILE).read_bytes() == payload
    assert not (tmp_path / (assets.PROMPT_FILE + ".part")).exists()


def test_missing_huggingface_hub_is_explained(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)

    with pytest.raises(CommandError, match=r"huggingface_hub is not installed. Install it with `pip install"):
        call_command("download_weights", "--model-dir", str(tmp_path))


def test_failed_download_says_rerun(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)

    with pytest.raises(CommandError, match="Network is unreachable. Run the command again to resume"):
        call_command("download_weights", "--model-dir", str(tmp_path))


def test_bad_download_is_reported(tmp_path, reduced_model_dir, monkeypatch):
    class TruncatingHub(FakeHub):
        def __call__(self, repo_id, filename, **kwargs):
            target = Path(super().__call__(repo_id, filename, **kwargs))
            target.write_bytes(target.read_bytes()[:100])
            return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", TruncatingHub(reduced_model_dir))
    monkeypatch.setattr(
        download_weights, "urlopen", FakeOpener((reduced_model_dir / assets.PROMPT_FILE).read_bytes())
    )

    with pytest.raises(CommandError, match="Some weight files are not usable"):
        call_command("download_weights", "--model-dir", str(tmp_path))
