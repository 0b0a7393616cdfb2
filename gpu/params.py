"""Parameters, progress reports and errors shared by the web app and the gpu/ pipeline.

This module is the contract between `tasks_app` and `gpu`: plain data, no torch, no Django.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

VARIANTS = ("tiny_long", "tiny", "full", "lanczos")
MODEL_VARIANTS = ("tiny_long", "tiny", "full")
SCALES = (2, 3, 4)
COLOR_FIX_METHODS = ("adain", "wavelet", "none")
OUTPUT_CODECS = ("h264", "hevc", "hevc10")
OUTPUT_CONTAINERS = ("mp4", "mkv")
# Inclusive (minimum, maximum) of each numeric parameter. The upload form, the upscale command and the
# settings all accept these ranges, and UpscaleParams rejects a value outside them.
PARAMETER_LIMITS = {
    "sparse_ratio": (0.5, 4.0),
    "kv_ratio": (1.0, 8.0),
    "local_range": (1, 31),
    "seed": (0, 2**32 - 1),
    "crf": (0, 51),
}


@dataclass(frozen=True)
class UpscaleParams:
    """Everything that decides what an upscale run produces."""

    variant: str = "tiny_long"
    scale: int = 4
    sparse_ratio: float = 2.0
    kv_ratio: float = 3.0
    local_range: int = 11
    color_fix: str = "adain"
    seed: int = 0
    codec: str = "h264"
    container: str = "mp4"
    crf: int = 18
    preset: str = "medium"
    tiled: bool = False
    kv_offload: bool = False
    keep_partial_on_decode_error: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {', '.join(VARIANTS)}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale}")
        if self.color_fix not in COLOR_FIX_METHODS:
            raise ValueError(f"color_fix must be one of {COLOR_FIX_METHODS}, got {self.color_fix!r}")
        if self.codec not in OUTPUT_CODECS:
            raise ValueError(f"codec must be one of {OUTPUT_CODECS}, got {self.codec!r}")
        if self.container not in OUTPUT_CONTAINERS:
            raise ValueError(f"container must be one of {OUTPUT_CONTAINERS}, got {self.container!r}")
        for name, (minimum, maximum) in PARAMETER_LIMITS.items():
            value = getattr(self, name)
            if not minimum <= value <= maximum:
                raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> UpscaleParams:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class RuntimeOptions:
    """Host-side tuning that never changes the output: threads, buffers, devices, paths."""

    model_dir: str = "models/FlashVSR-v1.1"
    decode_threads: int = 2
    prefetch_frames: int = 32
    lq_max_bytes: int = 0
    encode_queue_frames: int = 16
    device: str | None = None
    preview_path: str | None = None
    preview_interval_s: float = 5.0


@dataclass(frozen=True)
class Progress:
    """One progress report; the pipeline sends one at most about once a second, plus a final one."""

    processed_frames: int
    total_frames: int
    frames_per_second: float
    eta_seconds: float | None
    stage: str = "upscaling"

    @property
    def fraction(self) -> float:
        if self.total_frames <= 0:
            return 0.0
        return min(1.0, self.processed_frames / self.total_frames)


@dataclass
class UpscaleResult:
    """Summary of a finished run: the facts a user checks, and notes to show on the task."""

    frames: int
    width: int
    height: int
    duration_s: float
    notes: list[str] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


class UpscaleError(Exception):
    """A failure a user can act on; `user_message` is the sentence shown on the task."""

    def __init__(self, user_message: str, *, detail: str = "") -> None:
        super().__init__(user_message if not detail else f"{user_message} ({detail})")
        self.user_message = user_message
        self.detail = detail


class InputError(UpscaleError):
    """The input file cannot be used as it is."""


class DecodeError(UpscaleError):
    """The input broke mid-decode; `frame_index` is the first frame that could not be decoded."""

    def __init__(self, user_message: str, *, frame_index: int, detail: str = "") -> None:
        super().__init__(user_message, detail=detail)
        self.frame_index = frame_index


class OutputError(UpscaleError):
    """Writing the result failed, for example because the disk is full."""


class ModelError(UpscaleError):
    """The model could not run: missing or corrupt weights, out of GPU memory."""


class Cancelled(Exception):
    """Raised inside the pipeline when the cancel check returns true."""
