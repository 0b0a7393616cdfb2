"""The cost of the Lanczos 2x pipeline against the FFmpeg command line doing the same work.

Both sides decode the same file, scale it to twice its size with Lanczos, encode it with libx264 at the
same CRF and preset, and copy the audio. The runs alternate (pipeline, ffmpeg, pipeline, ...) so both see the
same machine state. The result is the median of the per-pair wall-time ratios, with a target of at most 1.25.
CPU time (user plus system) of each process is printed too, since it is less affected by other load.
The pipeline runs as its own process, like the ffmpeg command, so both pay their start-up time.

    python bench/io_overhead.py [SOURCE] [--runs 3] [--crf 18] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.child_process import run_child  # noqa: E402

DEFAULT_SOURCE = REPO.parent / "shared" / "samples" / "mb-h264-aac-tx3g-1280x720.mp4"
TARGET_RATIO = 1.25

PIPELINE_RUNNER = (
    "import sys; from gpu.api import upscale_video; from gpu.params import UpscaleParams; "
    "upscale_video(sys.argv[1], sys.argv[2], "
    "UpscaleParams(variant='lanczos', scale=2, crf=int(sys.argv[3]), preset=sys.argv[4]))"
)


def pipeline_command(source: Path, output: Path, crf: int, preset: str) -> list[str]:
    return [sys.executable, "-c", PIPELINE_RUNNER, str(source), str(output), str(crf), preset]


def ffmpeg_command(source: Path, output: Path, width: int, height: int, crf: int, preset: str) -> list[str]:
    return [
        "ffmpeg",
        "-v",
        "error",
        "-nostdin",
        "-y",
        "-i",
        str(source),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
        "-map",
        "0:s?",
        "-vf",
        f"scale={width}:{height}:flags=lanczos+accurate_rnd+full_chroma_int",
        "-c:v",
        "libx264",
        "-crf",
        str(crf),
        "-preset",
        preset,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "copy",
        "-c:s",
        "mov_text",
        str(output),
    ]


def timed(command: list[str]) -> tuple[float, float]:
    """Run `command`; return (wall seconds, CPU seconds of user plus system time of that process)."""
    elapsed, usage = run_child(command, cwd=REPO)
    return elapsed, usage.ru_utime + usage.ru_stime


def displayed_size(source: Path) -> tuple[int, int]:
    sys.path.insert(0, str(REPO))
    from gpu.video.probe import probe

    info = probe(source)
    return info.width, info.height


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, nargs="?", default=DEFAULT_SOURCE)
    parser.add_argument("--runs", type=int, default=3, help="number of pipeline/ffmpeg pairs")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--preset", default="veryfast", help="libx264 preset used by both sides")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit(
            "The ffmpeg command is not installed; install it (apt-get install ffmpeg) to compare."
        )
    width, height = displayed_size(args.source)

    ratios = []
    cpu_ratios = []
    with tempfile.TemporaryDirectory(prefix="io-overhead-") as scratch:
        folder = Path(scratch)
        for run in range(1, args.runs + 1):
            pipeline = pipeline_command(args.source, folder / "pipeline.mp4", args.crf, args.preset)
            ours, ours_cpu = timed(pipeline)
            theirs, theirs_cpu = timed(
                ffmpeg_command(
                    args.source, folder / "ffmpeg.mp4", 2 * width, 2 * height, args.crf, args.preset
                )
            )
            ratios.append(ours / theirs)
            cpu_ratios.append(ours_cpu / theirs_cpu)
            print(
                f"run {run}: pipeline {ours:6.2f} s wall {ours_cpu:6.2f} s CPU, "
                f"ffmpeg {theirs:6.2f} s wall {theirs_cpu:6.2f} s CPU, "
                f"ratio wall {ours / theirs:.3f} CPU {ours_cpu / theirs_cpu:.3f}"
            )
    median = statistics.median(ratios)
    verdict = "PASS" if median <= TARGET_RATIO else "FAIL"
    print(
        f"{args.source.name} {width}x{height} -> {2 * width}x{2 * height}, "
        f"crf {args.crf}, preset {args.preset}"
    )
    print(f"median CPU-time ratio {statistics.median(cpu_ratios):.3f} (for reference)")
    print(f"median wall-time ratio {median:.3f} (target <= {TARGET_RATIO}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
