"""Measure the peak resident memory of Tiny-Long runs of several lengths (run as a script).

Usage: python tiny_long_memory_probe.py FRAMES[:keep] ...

Prints one JSON object: for each run, the input frame count, the frames emitted and the peak RSS
growth in bytes above the RSS before the run. The peak is reset between runs by writing 5 to
/proc/self/clear_refs (Linux). The parent sets MALLOC_MMAP_THRESHOLD_ so freed tensors go back to
the kernel at once and RSS follows live memory. ":keep" makes the frame sink keep every frame,
which a flat-memory pipeline must show as growth.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from small_models import small_modules  # noqa: E402

from gpu.flashvsr.pipeline import FlashVSRTinyLongPipeline  # noqa: E402

HEIGHT, WIDTH = 128, 256


class SyntheticSource:
    """Frames made on request from their index; nothing is stored."""

    def get(self, start: int, stop: int) -> torch.Tensor:
        frames = [
            torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(index)) * 2 - 1
            for index in range(start, stop)
        ]
        return torch.stack(frames)

    def release_until(self, index: int) -> None:
        pass


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def measure(pipeline: FlashVSRTinyLongPipeline, frames: int, keep: bool) -> dict:
    kept_frames: list[torch.Tensor] = []
    emitted = 0

    def sink(chunk: torch.Tensor, start: int) -> None:
        nonlocal emitted
        emitted += chunk.shape[0]
        if keep:
            kept_frames.append(chunk)

    Path("/proc/self/clear_refs").write_text("5")
    baseline = _status_kib("VmRSS")
    pipeline(SyntheticSource(), frames, HEIGHT, WIDTH, sink, seed=0)
    peak = _status_kib("VmHWM")
    return {"frames": frames, "emitted": emitted, "keep": keep, "peak_growth": (peak - baseline) * 1024}


def main(specs: list[str]) -> None:
    torch.set_num_threads(1)
    pipeline = FlashVSRTinyLongPipeline(small_modules())
    measure(pipeline, 25, keep=False)  # warm-up: allocator pools, lazy module state
    runs = []
    for spec in specs:
        frames, _, mode = spec.partition(":")
        runs.append(measure(pipeline, int(frames), keep=mode == "keep"))
    print(json.dumps(runs))


if __name__ == "__main__":
    main(sys.argv[1:])
