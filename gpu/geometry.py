"""Frame-count, padding and tile plans that map a source video onto FlashVSR's fixed shapes.

FlashVSR reads 8n + 1 >= 25 LQ frames whose sides are multiples of 128 pixels and outputs 8n - 3 frames. The
plans here pad a video of any length and size up to those shapes and record what to keep afterwards, so the
output has exactly the source's frame count and exactly `scale` times its displayed size. No torch import:
the web process uses these plans to predict output sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SPATIAL_MULTIPLE = 128
MIN_MODEL_FRAMES = 25
LOOKAHEAD_FRAMES = 4
FRAME_STEP = 8


@dataclass(frozen=True)
class FramePlan:
    """How many copies of the last frame extend `source_frames` frames to the model's input length.

    The model outputs `model_frames - 4` frames, of which the first `source_frames` are kept. Output frame k
    shows source frame k because the pipeline's output index equals its LQ input index.
    """

    source_frames: int
    model_frames: int

    @property
    def padding_frames(self) -> int:
        return self.model_frames - self.source_frames

    @property
    def model_output_frames(self) -> int:
        return self.model_frames - LOOKAHEAD_FRAMES


def plan_frames(source_frames: int) -> FramePlan:
    """Plan the padding for `source_frames` >= 1 frames: the smallest 8n + 5 >= max(N, 21), plus 4 frames."""
    if source_frames < 1:
        raise ValueError(f"a video needs at least 1 frame, got {source_frames}")
    covered_frames = max(source_frames, MIN_MODEL_FRAMES - LOOKAHEAD_FRAMES)
    padded_output = FRAME_STEP * math.ceil((covered_frames - 5) / FRAME_STEP) + 5
    return FramePlan(source_frames, padded_output + LOOKAHEAD_FRAMES)


@dataclass(frozen=True)
class OutputGeometry:
    """The displayed source size and the exact output size, `scale` times larger in both directions."""

    source_width: int
    source_height: int
    scale: int

    @property
    def width(self) -> int:
        return self.source_width * self.scale

    @property
    def height(self) -> int:
        return self.source_height * self.scale


@dataclass(frozen=True)
class SpatialPlan(OutputGeometry):
    """The exact output size (`width` x `height`) and the padded size the model runs at.

    Padding is added on the right and at the bottom only, so the kept picture is the top-left
    `width` x `height` region of the model output: nothing of the source is cropped away.
    """

    padded_width: int
    padded_height: int

    @property
    def pad_right(self) -> int:
        return self.padded_width - self.width

    @property
    def pad_bottom(self) -> int:
        return self.padded_height - self.height


def plan_spatial(source_width: int, source_height: int, scale: int) -> SpatialPlan:
    """Plan the padding of a `source_width` x `source_height` video upscaled `scale` times."""
    if source_width < 1 or source_height < 1:
        raise ValueError(f"invalid source size {source_width}x{source_height}")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    return SpatialPlan(
        source_width,
        source_height,
        scale,
        _round_up(source_width * scale, SPATIAL_MULTIPLE),
        _round_up(source_height * scale, SPATIAL_MULTIPLE),
    )


@dataclass(frozen=True)
class Tile:
    """One spatial tile in padded-output pixels: columns `left`..`right-1`, rows `top`..`bottom-1`."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def plan_tiles(padded_width: int, padded_height: int, tile_size: int, overlap: int) -> list[Tile]:
    """Cover the padded frame with tiles of at most `tile_size` pixels that overlap by at least `overlap`.

    Tile edges lie on the 128-pixel grid, so every tile is a valid model input. Neighbouring tiles overlap
    by `overlap` or more, and the last tile in each direction ends at the frame border.
    """
    for name, value in (("tile_size", tile_size), ("overlap", overlap)):
        if value % SPATIAL_MULTIPLE:
            raise ValueError(f"{name} must be a multiple of {SPATIAL_MULTIPLE}, got {value}")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be at least 0 and smaller than tile_size, got {overlap}")
    columns = _tile_starts(padded_width, tile_size, overlap)
    rows = _tile_starts(padded_height, tile_size, overlap)
    return [
        Tile(left, top, min(left + tile_size, padded_width), min(top + tile_size, padded_height))
        for top in rows
        for left in columns
    ]


def _tile_starts(length: int, tile_size: int, overlap: int) -> list[int]:
    starts = list(range(0, max(length - tile_size, 0), tile_size - overlap))
    starts.append(max(length - tile_size, 0))
    return sorted(set(starts))


def feather_ramp(length: int, low_overlap: int, high_overlap: int) -> list[float]:
    """Blend weights along one tile side: rising across `low_overlap`, flat, falling across `high_overlap`.

    Weights stay above zero, so every pixel covered by any tile gets a finite blended value.
    """
    weights = []
    for position in range(length):
        weight = 1.0
        if low_overlap:
            weight = min(weight, (position + 0.5) / low_overlap)
        if high_overlap:
            weight = min(weight, (length - position - 0.5) / high_overlap)
        weights.append(weight)
    return weights


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
