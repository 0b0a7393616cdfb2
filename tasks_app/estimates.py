"""Processing-time estimates shown on the upload form before a file is sent."""

from __future__ import annotations

# Seconds of GPU work per output megapixel per frame, model and encoder together, derived from published
# throughput. FlashVSR Tiny runs at about 17 frames/s for 768×1408 output on one A100 (the upstream
# maintainer's figure). Full takes about 2.2 times as long as Tiny (third-party FastVR report: 5.3 vs 2.37
# frames/s).
# NOTE: the Tiny-Long figure (a little slower than Tiny) and the CPU-bound Lanczos baseline are guesses,
# not measurements.
SECONDS_PER_OUTPUT_MEGAPIXEL = {
    "tiny_long": 0.07,
    "tiny": 0.06,
    "full": 0.13,
    "lanczos": 0.02,
}

# A browser reads a file's duration but not its frame rate, so the form assumes this many frames per second.
ASSUMED_FRAMES_PER_SECOND = 30


def estimate_seconds(variant: str, frames: int, width: int, height: int) -> float | None:
    """Return the estimated processing time in seconds, or None for an unknown variant."""
    rate = SECONDS_PER_OUTPUT_MEGAPIXEL.get(variant)
    if rate is None:
        return None
    return frames * width * height / 1_000_000 * rate
