"""Checks that decoding, the model and encoding overlap: a model stand-in sleeps a fixed time per window.

The stand-in reads windows like FlashVSR (25 frames, then 8, output 4 frames behind) from the real streaming
buffer as RGB arrays, sleeps, and emits nearest-neighbour enlarged frames to the real encoder. When the three
stages overlap, the whole run takes about as long as the sleeping alone; the target is within 10%.

    python bench/overlap.py [--frames 1200] [--size 320x240] [--sleep-per-window 0.4]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import write_bench_clip  # noqa: E402
from gpu.api import upscale_video  # noqa: E402
from gpu.params import RuntimeOptions, UpscaleParams  # noqa: E402
from gpu.upscalers import register_upscaler  # noqa: E402
from gpu.upscalers.base import FLASHVSR_WINDOW, LQSpec, OutputGeometry, read_windows  # noqa: E402

TARGET_RATIO = 1.10
STAND_IN_VARIANT = "tiny_long"


class SleepingUpscaler:
    """A model stand-in: sleeps `sleep_s` per window and emits each frame enlarged by pixel repetition."""

    label = "overlap benchmark stand-in"
    window = FLASHVSR_WINDOW
    sleep_s = 0.0
    slept_s = 0.0
    first_sleep_at = 0.0
    last_sleep_end = 0.0

    def __init__(self, options: RuntimeOptions | None = None, params: UpscaleParams | None = None) -> None:
        del options, params

    def lq_spec(self, geometry: OutputGeometry, *, high_bit_depth: bool) -> LQSpec:
        return LQSpec(width=None, height=None, pix_fmt="rgb24", to_array=True)

    def run(self, source, geometry, emit, check_cancel) -> None:
        pending = []
        for window in read_windows(source, self.window, check_cancel):
            if not SleepingUpscaler.first_sleep_at:
                SleepingUpscaler.first_sleep_at = time.monotonic()
            time.sleep(self.sleep_s)
            SleepingUpscaler.slept_s += self.sleep_s
            SleepingUpscaler.last_sleep_end = time.monotonic()
            pending.extend(self._enlarge(frame, geometry.scale) for frame in window.real_frames)
            # Like FlashVSR, the output trails the input by the window's lookahead until the stream ends.
            keep = 0 if source.total is not None else self.window.lookahead
            while len(pending) > keep:
                index, image = pending.pop(0)
                emit(index, image)

    @staticmethod
    def _enlarge(frame, scale: int) -> tuple[int, np.ndarray]:
        return frame.index, np.repeat(np.repeat(frame.image, scale, axis=0), scale, axis=1)


def timed_run(source: Path, output: Path, sleep_s: float, preset: str) -> tuple[float, float, int]:
    """Run the pipeline with the stand-in; return (wall seconds, seconds slept, frames written)."""
    # The registry imports the stand-in as bench.overlap, which is a different module object than __main__.
    stand_in = importlib.import_module("bench.overlap").SleepingUpscaler
    stand_in.sleep_s = sleep_s
    stand_in.slept_s = 0.0
    stand_in.first_sleep_at = 0.0
    params = UpscaleParams(variant=STAND_IN_VARIANT, scale=2, preset=preset)
    started = time.monotonic()
    result = upscale_video(source, output, params)
    finished = time.monotonic()
    if sleep_s:
        print(
            f"before the first window: {stand_in.first_sleep_at - started:5.2f} s, "
            f"after the last window: {finished - stand_in.last_sleep_end:5.2f} s"
        )
    return finished - started, stand_in.slept_s, result.frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--size", default="320x240", help="clip size WIDTHxHEIGHT")
    parser.add_argument(
        "--sleep-per-window", type=float, default=0.4, help="stand-in model time per window, s"
    )
    parser.add_argument("--preset", default="medium", help="libx264 preset of the output")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    register_upscaler(STAND_IN_VARIANT, "bench.overlap:SleepingUpscaler")

    with tempfile.TemporaryDirectory(prefix="overlap-") as scratch:
        folder = Path(scratch)
        source = write_bench_clip(folder / "clip.mp4", frames=args.frames, size=(width, height))
        io_only, _, frames = timed_run(source, folder / "io-only.mp4", 0.0, args.preset)
        total, slept, frames = timed_run(
            source, folder / "overlapped.mp4", args.sleep_per_window, args.preset
        )

    ratio = total / slept
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"{frames} frames {width}x{height} -> x2, libx264 preset {args.preset}")
    print(f"decode + encode alone (model sleeps 0 s): {io_only:6.1f} s")
    print(f"model stand-in sleep total:               {slept:6.1f} s")
    print(
        f"whole run with the stand-in:              {total:6.1f} s "
        f"(serial would be about {io_only + slept:.1f} s)"
    )
    print(f"run / sleep ratio {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
