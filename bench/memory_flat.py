"""Peak memory of a Lanczos 2x run on a short and a ten times longer clip; the two should be within 15%.

Each run is a fresh process: `python manage.py upscale` when the command exists, else a process that calls
gpu.api.upscale_video directly. Peak RSS comes from the kernel's rusage of that child (ru_maxrss).

    python bench/memory_flat.py [--frames 300 3000] [--size 320x240] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.child_process import run_child  # noqa: E402
from bench.clips import write_bench_clip  # noqa: E402

TARGET_RATIO = 1.15
API_RUNNER = (
    "import sys; from gpu.api import upscale_video; from gpu.params import UpscaleParams; "
    "r = upscale_video(sys.argv[1], sys.argv[2], UpscaleParams(variant='lanczos', scale=2)); "
    "print(r.frames, r.width, r.height)"
)


def upscale_command(source: Path, output: Path, *, use_manage: bool) -> list[str]:
    if use_manage:
        return [
            sys.executable,
            "manage.py",
            "upscale",
            str(source),
            str(output),
            "--variant",
            "lanczos",
            "--scale",
            "2",
        ]
    return [sys.executable, "-c", API_RUNNER, str(source), str(output)]


def measure(command: list[str]) -> tuple[float, float]:
    """Run `command` in the repository root; return (peak RSS in MiB, wall seconds)."""
    # The management command loads Django settings, which refuse to start without a secret key.
    env = {"SECRET_KEY": "memory-benchmark-only-not-secret", **os.environ}
    elapsed, usage = run_child(command, cwd=REPO, env=env)
    return usage.ru_maxrss / 1024, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, nargs=2, default=[300, 3000], help="short and long clip lengths"
    )
    parser.add_argument("--size", default="320x240", help="clip size WIDTHxHEIGHT")
    parser.add_argument("--keep", type=Path, help="folder to keep the clips and results in")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))

    with tempfile.TemporaryDirectory(prefix="memory-flat-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        use_manage = (REPO / "tasks_app" / "management" / "commands" / "upscale.py").exists()
        peaks = []
        for frames in args.frames:
            source = write_bench_clip(folder / f"clip-{frames}.mp4", frames=frames, size=(width, height))
            command = upscale_command(source, folder / f"result-{frames}.mp4", use_manage=use_manage)
            peak_mib, seconds = measure(command)
            peaks.append(peak_mib)
            print(
                f"{frames:6d} frames {width}x{height}: peak RSS {peak_mib:7.1f} MiB, {seconds:6.1f} s, "
                f"runner: {'manage.py upscale' if 'manage.py' in command else 'gpu.api in a subprocess'}"
            )
    ratio = peaks[1] / peaks[0]
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"long/short peak RSS ratio {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
