"""Fixtures for the FlashVSR variant tests: a reduced weight folder and an in-memory frame source."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from gpu.model_cache import shared_cache
from gpu.upscalers.base import SourceFrame

from .reduced_weights import write_reduced_weights

# Two OpenMP threads on a loaded two-core machine run these small models many times slower than one.
torch.set_num_threads(int(os.environ.get("FLASHVSR_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def reduced_model_dir(tmp_path_factory):
    return write_reduced_weights(tmp_path_factory.mktemp("reduced-flashvsr"))


@pytest.fixture(autouse=True)
def fresh_model_cache():
    """Each test loads its own modules, so a test that swaps a module cannot leak into the next."""
    shared_cache().clear()
    yield
    shared_cache().clear()


class ArraySource:
    """A FrameSource over a list of H x W x 3 uint8 arrays whose length is known once the end is read."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images
        self._released = 0
        self._end_seen = False

    @property
    def total(self) -> int | None:
        return len(self.images) if self._end_seen else None

    def get(self, start: int, stop: int) -> list[SourceFrame]:
        if start < self._released:
            raise ValueError(f"frame {start} was released")
        if stop >= len(self.images):
            self._end_seen = True
        return [SourceFrame(index, self.images[index]) for index in range(start, min(stop, len(self.images)))]

    def release_until(self, index: int) -> None:
        self._released = max(self._released, index)


def collect_frames(upscaler, images: list[np.ndarray], scale: int = 4) -> list[tuple[int, np.ndarray]]:
    """Run `upscaler` on `images` and return the emitted (index, frame) pairs."""
    from gpu.geometry import OutputGeometry

    height, width = images[0].shape[:2]
    emitted: list[tuple[int, np.ndarray]] = []
    geometry = OutputGeometry(width, height, scale)
    upscaler.lq_spec(geometry, high_bit_depth=False)
    upscaler.run(
        ArraySource(images), geometry, lambda index, image: emitted.append((index, image)), lambda index: None
    )
    return emitted
