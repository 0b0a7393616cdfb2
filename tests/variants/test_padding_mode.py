"""Border quality of the spatial padding mode, measured on the reduced model.

A 32x32 clip runs without padding (128x128 output). The same clip cropped to 32x24 runs padded from 96 to
128 rows. The kept rows next to the padded border (rows 64-95) are compared with the unpadded run. Measured
on a 2-core CPU, 25 frames, Tiny-Long, mean absolute difference in grey levels: reduced random folder
replicate 4.07, reflect 5.84; the conformance case-a weights replicate 11.9, reflect 16.2 (Full: 6.5 and 9.5).
Replicate is the mode the adapter uses.
"""

from __future__ import annotations

import numpy as np

from gpu.params import RuntimeOptions, UpscaleParams
from gpu.upscalers import flashvsr

from .conftest import collect_frames
from .frames import textured_clip

CHOSEN_MODE = flashvsr.PAD_MODE


def border_error(model_dir, mode, monkeypatch):
    monkeypatch.setattr(flashvsr, "PAD_MODE", mode)
    upscaler = flashvsr.FlashVSRUpscaler(
        "tiny_long", RuntimeOptions(model_dir=str(model_dir)), UpscaleParams()
    )
    clip = textured_clip(25, 32, 32)
    reference = np.stack([frame for _, frame in collect_frames(upscaler, clip)]).astype(np.float64)
    padded = np.stack([frame for _, frame in collect_frames(upscaler, [f[:24] for f in clip])]).astype(
        np.float64
    )
    assert padded.shape == (25, 96, 128, 3)
    return np.abs(padded[:, 64:96] - reference[:, 64:96]).mean()


def test_replicate_padding_beats_reflect(reduced_model_dir, monkeypatch):
    replicate = border_error(reduced_model_dir, "replicate", monkeypatch)
    reflect = border_error(reduced_model_dir, "reflect", monkeypatch)

    assert CHOSEN_MODE == "replicate"
    assert replicate < reflect
