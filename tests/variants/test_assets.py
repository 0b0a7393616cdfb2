"""The weight-folder report, the flashvsr_assets command and the asset system check."""

from __future__ import annotations

import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gpu import assets
from tasks_app.checks import check_model_assets


@pytest.fixture
def model_copy(tmp_path, reduced_model_dir):
    folder = tmp_path / "weights"
    shutil.copytree(reduced_model_dir, folder)
    return folder


def break_folder(folder):
    """Delete the VAE and cut the TCDecoder in half, as an interrupted download leaves it."""
    (folder / assets.VAE_FILE).unlink()
    decoder = folder / assets.TC_DECODER_FILE
    decoder.write_bytes(decoder.read_bytes()[: decoder.stat().st_size // 2])


def test_reduced_folder_is_ready_test_layout(reduced_model_dir):
    report = assets.report(reduced_model_dir)

    assert report.layout == assets.TEST
    assert all(entry.status == assets.OK for entry in report.files.values())
    assert [report.ready(variant) for variant in ("tiny_long", "tiny", "full")] == [True, True, True]
    assert report.variants["tiny_long"].summary == "ready: 4 files, reduced test weights, sizes checked"


def test_verify_loads_test_files(reduced_model_dir):
    report = assets.report(reduced_model_dir, verify=True)

    assert all(entry.verified for entry in report.files.values())
    assert report.variants["full"].summary == "ready: 4 files, reduced test weights, verified"


def test_missing_and_truncated_files(model_copy):
    break_folder(model_copy)

    report = assets.report(model_copy)

    assert report.files[assets.VAE_FILE].status == assets.MISSING
    decoder = report.files[assets.TC_DECODER_FILE]
    assert decoder.status == assets.WRONG_SIZE
    assert "cut short" in decoder.message
    assert not report.ready("tiny_long")
    assert not report.ready("full")
    assert "Wan2.1_VAE.pth is missing" in report.variants["full"].summary


def test_truncated_safetensors_is_wrong_size(model_copy):
    dit = model_copy / assets.DIT_FILE
    dit.write_bytes(dit.read_bytes()[:-100])

    entry = assets.inspect_file(dit)

    assert entry.status == assets.WRONG_SIZE
    assert "header needs" in entry.message


def test_damaged_file_of_right_size_fails_verify(model_copy):
    prompt = model_copy / assets.PROMPT_FILE
    data = bytearray(prompt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    prompt.write_bytes(bytes(data))

    assert assets.inspect_file(prompt).status == assets.OK
    assert assets.inspect_file(prompt, verify=True).status == assets.CORRUPT


def test_release_sized_files_are_checked_by_sha256(model_copy, monkeypatch):
    payloads = {name: assets._payload_bytes(model_copy / name) for name in assets.ALL_FILES}
    monkeypatch.setattr(assets, "RELEASE_PAYLOAD_BYTES", payloads)
    real_hash = assets.sha256_of(model_copy / assets.LQ_PROJ_FILE)
    monkeypatch.setattr(assets, "RELEASE_SHA256", {assets.LQ_PROJ_FILE: real_hash, assets.DIT_FILE: "0" * 64})

    report = assets.report(model_copy, verify=True)

    assert report.layout == assets.RELEASE
    assert report.files[assets.LQ_PROJ_FILE].verified
    assert report.files[assets.DIT_FILE].status == assets.WRONG_SHA256
    assert "download it again" in report.files[assets.DIT_FILE].message
    assert not report.ready("tiny")


def test_mixed_layouts_are_not_ready(model_copy, monkeypatch):
    payloads = dict(assets.RELEASE_PAYLOAD_BYTES)
    payloads[assets.DIT_FILE] = assets._payload_bytes(model_copy / assets.DIT_FILE)
    monkeypatch.setattr(assets, "RELEASE_PAYLOAD_BYTES", payloads)

    report = assets.report(model_copy)

    assert report.layout == "mixed"
    assert not report.ready("tiny_long")
    assert "mixed" in report.variants["tiny_long"].summary


def test_report_dict_feeds_status_panel(reduced_model_dir):
    variants = assets.report(reduced_model_dir).to_dict()["variants"]

    assert variants["tiny_long"]["ready"] is True
    assert variants["full"]["summary"].startswith("ready")


def test_command_reports_missing_and_truncated(model_copy, settings, capsys):
    break_folder(model_copy)
    settings.FLASHVSR_MODEL_DIR = model_copy
    settings.DEFAULT_MODEL_VARIANT = "tiny_long"

    with pytest.raises(CommandError, match="default variant tiny_long cannot run") as raised:
        call_command("flashvsr_assets")

    output = capsys.readouterr().out
    assert raised.value.returncode == 1
    assert "missing      Wan2.1_VAE.pth" in output
    assert "wrong size   TCDecoder.ckpt" in output
    assert "tiny_long: not ready" in output
    assert "ok           posi_prompt.pth" in output


def test_command_passes_on_complete_folder(reduced_model_dir, settings, capsys):
    settings.FLASHVSR_MODEL_DIR = reduced_model_dir

    call_command("flashvsr_assets", "--verify")

    output = capsys.readouterr().out
    assert "tiny_long: ready: 4 files, reduced test weights, verified" in output


def test_command_ignores_unready_non_default(model_copy, settings, capsys):
    (model_copy / assets.VAE_FILE).unlink()
    settings.FLASHVSR_MODEL_DIR = model_copy
    settings.DEFAULT_MODEL_VARIANT = "tiny_long"

    call_command("flashvsr_assets")

    assert "full: not ready: Wan2.1_VAE.pth is missing" in capsys.readouterr().out


def test_check_warns_for_default_and_preloaded(model_copy, settings):
    (model_copy / assets.VAE_FILE).unlink()
    settings.FLASHVSR_MODEL_DIR = model_copy
    settings.DEFAULT_MODEL_VARIANT = "tiny_long"
    settings.MODEL_VARIANTS_TO_PRELOAD = ["full"]

    warnings = check_model_assets(None)

    assert [warning.id for warning in warnings] == ["tasks_app.W010"]
    assert "FlashVSR full cannot run" in warnings[0].msg
    assert "Wan2.1_VAE.pth is missing" in warnings[0].msg
    assert "download_weights" in warnings[0].hint


def test_check_silent_for_lanczos_default(tmp_path, settings):
    settings.FLASHVSR_MODEL_DIR = tmp_path / "empty"
    settings.DEFAULT_MODEL_VARIANT = "lanczos"
    settings.MODEL_VARIANTS_TO_PRELOAD = []

    assert check_model_assets(None) == []
