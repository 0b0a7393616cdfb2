"""Tiny-Long keeps peak memory flat in the video length (small random model, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("tiny_long_memory_probe.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
SHORT_FRAMES = 33
LONG_FRAMES = 129  # about 4x the short clip, still 8n+1
MAX_GROWTH = 1.15


def run_probe(*specs: str) -> list[dict]:
    env = dict(os.environ)
    env.update(
        {
            # Every allocation above 64 KiB is its own mapping, returned to the kernel when freed.
            "MALLOC_MMAP_THRESHOLD_": "65536",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        }
    )
    completed = subprocess.run(
        [sys.executable, str(PROBE), *specs],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset peak RSS")
def test_tiny_long_peak_memory_flat_in_length():
    short, long, hoarding = run_probe(str(SHORT_FRAMES), str(LONG_FRAMES), f"{LONG_FRAMES}:keep")
    assert short["emitted"] == SHORT_FRAMES - 4
    assert long["emitted"] == LONG_FRAMES - 4
    assert long["peak_growth"] <= short["peak_growth"] * MAX_GROWTH, (short, long)
    # The measurement itself must see growth when output frames are kept.
    assert hoarding["peak_growth"] > short["peak_growth"] * MAX_GROWTH, (short, hoarding)
