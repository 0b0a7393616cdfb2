"""Smooth, textured test pictures for comparing model outputs."""

from __future__ import annotations

import numpy as np


def textured_clip(frames: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Return `frames` H x W x 3 uint8 pictures: moving sine patterns plus mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    clip = []
    for k in range(frames):
        picture = np.stack(
            [
                128 + 60 * np.sin((x + k) / 5.0),
                128 + 60 * np.cos((y - k) / 4.0),
                128 + 50 * np.sin((x + y) / 7.0),
            ],
            axis=-1,
        )
        picture += rng.normal(0, 8, picture.shape)
        clip.append(np.clip(picture, 0, 255).astype(np.uint8))
    return clip
