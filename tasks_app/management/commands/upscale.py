"""`manage.py upscale INPUT OUTPUT`: run one upscale synchronously, without the queue or the database."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gpu.params import (
    COLOR_FIX_METHODS,
    OUTPUT_CODECS,
    OUTPUT_CONTAINERS,
    PARAMETER_LIMITS,
    SCALES,
    VARIANTS,
    Cancelled,
    Progress,
    UpscaleError,
    UpscaleParams,
)
from tasks_app.defaults import parameter_defaults
from tasks_app.jobs import runtime_options
from tasks_app.templatetags.task_format import clock_duration

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Upscale one video file with FlashVSR (or the lanczos baseline) and write the result to OUTPUT."

    def add_arguments(self, parser) -> None:
        defaults = parameter_defaults()
        parser.add_argument("input", help="Path of the source video.")
        parser.add_argument("output", help="Path of the result file; its folder must exist.")

        parser.add_argument(
            "--variant",
            choices=VARIANTS,
            default=defaults["variant"],
            help="Model variant; lanczos is the baseline without a model (default: %(default)s).",
        )
        parser.add_argument(
            "--scale",
            type=int,
            choices=SCALES,
            default=defaults["scale"],
            help=(
                "Output size as a multiple of the displayed source size; FlashVSR was trained for 4 "
                "(default: %(default)s)."
            ),
        )

        parser.add_argument(
            "--sparse-ratio",
            type=float,
            default=defaults["sparse_ratio"],
            help=(
                "Share of attention blocks kept; 1.5 is faster, 2.0 is more stable "
                f"({_range_text('sparse_ratio')}, default: %(default)s)."
            ),
        )
        parser.add_argument(
            "--kv-ratio",
            type=float,
            default=defaults["kv_ratio"],
            help=f"Cached latent slabs per step ({_range_text('kv_ratio')}, default: %(default)s).",
        )
        parser.add_argument(
            "--local-range",
            type=int,
            default=defaults["local_range"],
            help=(
                "Attention neighbourhood in 128-pixel windows "
                f"({_range_text('local_range')}, default: %(default)s)."
            ),
        )
        parser.add_argument(
            "--color-fix",
            choices=COLOR_FIX_METHODS,
            default=defaults["color_fix"],
            help="Colour correction towards the source (default: %(default)s).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=defaults["seed"],
            help=f"Noise seed ({_range_text('seed')}, default: %(default)s).",
        )

        parser.add_argument(
            "--codec",
            choices=OUTPUT_CODECS,
            default=defaults["codec"],
            help="Output video codec (default: %(default)s).",
        )
        parser.add_argument(
            "--container",
            choices=OUTPUT_CONTAINERS,
            default=None,
            help="Output container; default: taken from OUTPUT's extension, else mp4.",
        )
        parser.add_argument(
            "--crf",
            type=int,
            default=defaults["crf"],
            help=f"Constant rate factor, lower is better ({_range_text('crf')}, default: %(default)s).",
        )
        parser.add_argument(
            "--preset",
            choices=settings.ENCODER_PRESETS,
            default=defaults["preset"],
            help="Encoder speed preset (default: %(default)s).",
        )

        parser.add_argument(
            "--tiled",
            action="store_true",
            help="Run the model in overlapping 512-pixel tiles to use less GPU memory.",
        )
        parser.add_argument("--kv-offload", action="store_true", help="Keep the KV cache in CPU memory.")
        parser.add_argument(
            "--keep-partial-on-decode-error",
            action="store_true",
            help="Keep the frames before a decode error instead of failing.",
        )
        parser.add_argument("--overwrite", action="store_true", help="Replace OUTPUT if it exists.")

    def handle(self, *args, **options) -> None:
        input_path = Path(options["input"])
        output_path = Path(options["output"])
        self._check_paths(input_path, output_path, overwrite=options["overwrite"])
        params = self._params(options, output_path)

        from gpu.api import upscale_video

        bar = ProgressBar(self.stderr)
        started = time.monotonic()
        try:
            result = upscale_video(
                input_path, output_path, params, options=runtime_options(), on_progress=bar
            )
        except Cancelled as error:
            raise CommandError(f"Cancelled: {error}") from error
        except UpscaleError as error:
            bar.finish()
            raise CommandError(error.user_message) from error
        bar.finish()

        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Wrote {output_path}: {result.frames} frames, {result.width}x{result.height}, "
            f"{result.duration_s:.2f} s of video in {elapsed:.1f} s."
        )
        for note in result.notes:
            self.stdout.write(f"Note: {note}")

    def _check_paths(self, input_path: Path, output_path: Path, *, overwrite: bool) -> None:
        if not input_path.is_file():
            raise CommandError(f"Input file {input_path} does not exist or is not a file.")
        if not output_path.parent.is_dir():
            raise CommandError(f"Output folder {output_path.parent} does not exist; create it first.")
        if output_path.exists() and not overwrite:
            raise CommandError(f"Output file {output_path} already exists; pass --overwrite to replace it.")
        if output_path.resolve() == input_path.resolve():
            raise CommandError("Output and input are the same file; choose another output path.")

    def _params(self, options: dict, output_path: Path) -> UpscaleParams:
        container = options["container"] or _container_from_suffix(output_path)
        try:
            return UpscaleParams(
                variant=options["variant"],
                scale=options["scale"],
                sparse_ratio=options["sparse_ratio"],
                kv_ratio=options["kv_ratio"],
                local_range=options["local_range"],
                color_fix=options["color_fix"],
                seed=options["seed"],
                codec=options["codec"],
                container=container,
                crf=options["crf"],
                preset=options["preset"],
                tiled=options["tiled"],
                kv_offload=options["kv_offload"],
                keep_partial_on_decode_error=options["keep_partial_on_decode_error"],
            )
        except ValueError as error:
            raise CommandError(f"Invalid parameter: {error}") from error


def _range_text(parameter: str) -> str:
    minimum, maximum = PARAMETER_LIMITS[parameter]
    return f"{minimum} to {maximum}"


def _container_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in OUTPUT_CONTAINERS else "mp4"


class ProgressBar:
    """Text progress bar on a command's OutputWrapper: redrawn in place on a terminal, else one line each."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.drawn = False
        self.in_place = stream.isatty()

    def __call__(self, progress: Progress) -> None:
        filled = round(progress.fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        total = progress.total_frames or "?"
        line = (
            f"[{bar}] {progress.fraction * 100:5.1f}% {progress.processed_frames}/{total} frames "
            f"{progress.frames_per_second:.1f} fps"
        )
        if progress.eta_seconds is not None:
            line += f" ETA {clock_duration(progress.eta_seconds)}"
        self.stream.write(("\r" + line) if self.in_place else line, ending="" if self.in_place else "\n")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn and self.in_place:
            self.stream.write("", ending="\n")
            self.stream.flush()
