"""Fixtures with small random-weight FlashVSR models."""

from __future__ import annotations

from pathlib import Path

import pytest
from small_models import small_modules, write_release_folder

from gpu.flashvsr.weights import FlashVSRWeights


@pytest.fixture(scope="session")
def small_weights() -> FlashVSRWeights:
    return small_modules()


@pytest.fixture
def release_folder(tmp_path: Path, small_weights: FlashVSRWeights) -> Path:
    return write_release_folder(tmp_path / "FlashVSR-v1.1", small_weights)
