"""FlashVSR Tiny-Long, Tiny and Full as upscalers: exact frame counts, exact sizes, optional tiling.

Each source frame is bicubic-upscaled with torch, padded on the right and bottom to the 128-pixel grid and
fed to the model. The tail of the video is padded with copies of its last frame up to the model's frame
count. The output is cropped back to exactly `scale` x the displayed size, and exactly one frame per source
frame is emitted, in order. The model modules are loaded once per worker process by `ModelCache`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from gpu.flashvsr.attention import SparseAttentionSettings
from gpu.flashvsr.color_fix import apply_color_fix
from gpu.flashvsr.pipeline import (
    LATENT_SCALE,
    DiTStreamer,
    FlashVSRFullPipeline,
    FlashVSRTinyPipeline,
    NoiseSource,
    iter_step_plans,
)
from gpu.flashvsr.weights import FlashVSRWeights
from gpu.geometry import (
    OutputGeometry,
    SpatialPlan,
    Tile,
    feather_ramp,
    plan_frames,
    plan_spatial,
    plan_tiles,
)
from gpu.model_cache import ModelCache, default_device, shared_cache, tile_state_copy
from gpu.params import ModelError, RuntimeOptions, UpscaleParams
from gpu.upscalers.base import (
    FLASHVSR_WINDOW,
    CancelHook,
    EmitFrame,
    FrameSource,
    LQSpec,
    read_windows,
)

log = logging.getLogger(__name__)

# Right/bottom padding of the upscaled LQ frames. Replicate was picked over reflect by measuring the
# kept picture next to the padded border against an unpadded run (tests/variants/test_padding_mode.py).
PAD_MODE = "replicate"
TILE_SIZE = 512
TILE_OVERLAP = 128

VARIANT_LABELS = {
    "tiny_long": "FlashVSR v1.1 Tiny-Long",
    "tiny": "FlashVSR v1.1 Tiny",
    "full": "FlashVSR v1.1 Full",
}


class FlashVSRUpscaler:
    """One FlashVSR variant behind the Upscaler protocol, run with the model options in `params`."""

    window = FLASHVSR_WINDOW

    def __init__(
        self,
        variant: str,
        options: RuntimeOptions,
        params: UpscaleParams,
        cache: ModelCache | None = None,
    ) -> None:
        if variant not in VARIANT_LABELS:
            raise ValueError(f"unknown FlashVSR variant {variant!r}")
        self.variant = variant
        self.label = VARIANT_LABELS[variant]
        self.options = options
        self.params = params
        self.cache = cache or shared_cache()
        self.tile_size = TILE_SIZE
        self.tile_overlap = TILE_OVERLAP
        self._high_bit_depth = False

    def lq_spec(self, geometry: OutputGeometry, *, high_bit_depth: bool) -> LQSpec:
        self._high_bit_depth = high_bit_depth
        pix_fmt = "rgb48le" if high_bit_depth else "rgb24"
        return LQSpec(width=None, height=None, pix_fmt=pix_fmt, to_array=True)

    def run(
        self, source: FrameSource, geometry: OutputGeometry, emit: EmitFrame, check_cancel: CancelHook
    ) -> None:
        device = torch.device(self.options.device or default_device())
        try:
            self._run_on(device, source, geometry, emit, check_cancel)
        except torch.cuda.OutOfMemoryError as error:
            raise _out_of_memory(self.variant, geometry.scale, str(error)) from error

    def _run_on(
        self,
        device: torch.device,
        source: FrameSource,
        geometry: OutputGeometry,
        emit: EmitFrame,
        check_cancel: CancelHook,
    ) -> None:
        weights = self.cache.weights(self.options.model_dir, self.variant, device)
        spatial = plan_spatial(geometry.source_width, geometry.source_height, geometry.scale)
        tiles = self._tiles(spatial)
        log.info(
            "%s at %dx%d (padded %dx%d) in %d tile(s) on %s",
            self.label,
            spatial.width,
            spatial.height,
            spatial.padded_width,
            spatial.padded_height,
            len(tiles),
            device,
        )
        # Tiny and Full keep the whole LQ video until the decode, so it stays in host memory and the pipeline
        # moves each step's frames to the GPU. Tiny-Long keeps at most 25 frames, on the GPU.
        storage = device if self.variant == "tiny_long" else torch.device("cpu")
        dtype = weights.dtype
        frames = LQFrames(source, spatial, device, dtype, check_cancel, storage_device=storage)
        writer = OutputWriter(spatial, tiles, emit, self._high_bit_depth, lambda: frames.total)
        if self.variant == "tiny_long":
            self._run_streaming(weights, frames, spatial, tiles, writer)
        else:
            self._run_whole_clip(weights, frames, spatial, tiles, writer, check_cancel)

    def _tiles(self, spatial: SpatialPlan) -> list[Tile]:
        if not self.params.tiled:
            return [Tile(0, 0, spatial.padded_width, spatial.padded_height)]
        return plan_tiles(spatial.padded_width, spatial.padded_height, self.tile_size, self.tile_overlap)

    def _settings(self, spatial: SpatialPlan) -> SparseAttentionSettings:
        # The ratio is computed for the whole padded frame also when tiles run separately, so each tile keeps
        # the same share of its attention blocks as the untiled run does.
        return SparseAttentionSettings.from_sparse_ratio(
            self.params.sparse_ratio,
            spatial.padded_height,
            spatial.padded_width,
            local_range=self.params.local_range,
            kv_ratio=self.params.kv_ratio,
        )

    def _run_streaming(
        self,
        weights: FlashVSRWeights,
        frames: LQFrames,
        spatial: SpatialPlan,
        tiles: list[Tile],
        writer: OutputWriter,
    ) -> None:
        noise = FrameNoise(spatial, weights, self.params.seed)
        settings = self._settings(spatial)
        runs = [TileStream(tile, weights, frames, noise, settings, self.params.kv_offload) for tile in tiles]
        for plan in iter_step_plans():
            for run in runs:
                run.step(self.params.color_fix, writer)
            writer.flush(plan.output_start, plan.output_stop)
            frames.release_until(plan.output_stop)
            if frames.total is not None and plan.output_stop >= frames.total:
                return

    def _run_whole_clip(
        self,
        weights: FlashVSRWeights,
        frames: LQFrames,
        spatial: SpatialPlan,
        tiles: list[Tile],
        writer: OutputWriter,
        check_cancel: CancelHook,
    ) -> None:
        video = frames.read_all()
        model_frames = video.shape[2]
        expected = plan_frames(frames.total).model_frames
        if model_frames != expected:
            raise RuntimeError(
                f"read {model_frames} LQ frames for {frames.total} source frames, expected {expected}"
            )
        # Untiled, the pipeline draws the same seeded noise step by step itself. Tiles need crops of one draw
        # for the whole frame, which keeps the noise of every step in memory at once.
        noise = (
            FrameNoise(spatial, weights, self.params.seed).whole_clip(model_frames)
            if len(tiles) > 1
            else None
        )
        settings = self._settings(spatial)

        def on_step(progress) -> None:
            check_cancel(progress.output_frames_done)

        # NOTE: Tiny and Full emit nothing until every step and the decode have finished, so the task's
        # progress stays at 0 until the end; Tiny-Long reports progress after every step.
        for tile in tiles:
            pipeline = self._whole_clip_pipeline(tile_state_copy(weights) if len(tiles) > 1 else weights)
            output = pipeline(
                video[..., tile.top : tile.bottom, tile.left : tile.right],
                settings=settings,
                color_fix=self.params.color_fix,
                noise=_crop_latents(noise, tile) if noise is not None else None,
                seed=self.params.seed,
                on_step=on_step,
            )
            writer.add(tile, output[0].transpose(0, 1), 0)
        writer.flush(0, output.shape[2])

    def _whole_clip_pipeline(self, weights: FlashVSRWeights):
        if self.variant == "full":
            pipeline = FlashVSRFullPipeline(weights, tiled=self.params.tiled)
        else:
            pipeline = FlashVSRTinyPipeline(weights)
        pipeline.kv_offload = self.params.kv_offload
        return pipeline


class LQFrames:
    """Upscaled, padded LQ frames `[n, 3, H, W]` in [-1, 1], read window by window from the source.

    Frames past the end of the source are copies of its last frame. `get` serves any range that was not
    released yet, reading more windows as needed.
    """

    def __init__(
        self,
        source: FrameSource,
        spatial: SpatialPlan,
        device: torch.device,
        dtype: torch.dtype,
        check_cancel: CancelHook,
        storage_device: torch.device | None = None,
    ) -> None:
        self._source = source
        self._spatial = spatial
        self._device = device
        self._dtype = dtype
        self._storage_device = storage_device or device
        self._windows = read_windows(source, FLASHVSR_WINDOW, check_cancel)
        self._chunks: list[torch.Tensor] = []
        self._first_index = 0
        self._loaded_until = 0
        self._exhausted = False

    @property
    def total(self) -> int | None:
        return self._source.total

    def get(self, start: int, stop: int) -> torch.Tensor:
        while self._loaded_until < stop and not self._exhausted:
            self._load_next_window()
        if start < self._first_index or stop > self._loaded_until:
            raise ValueError(
                f"LQ frames {start}-{stop - 1} are not available; "
                f"frames {self._first_index}-{self._loaded_until - 1} are held"
            )
        frames = torch.cat(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [frames]
        return frames[start - self._first_index : stop - self._first_index]

    def release_until(self, index: int) -> None:
        if index <= self._first_index or not self._chunks:
            return
        frames = torch.cat(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        drop = min(index, self._loaded_until) - self._first_index
        self._chunks = [frames[drop:].clone()]
        self._first_index += drop

    def read_all(self) -> torch.Tensor:
        """Read every window and return the whole LQ video `[1, 3, F, H, W]`, F = 8n + 1."""
        while not self._exhausted:
            self._load_next_window()
        return self.get(0, self._loaded_until).transpose(0, 1).unsqueeze(0)

    def _load_next_window(self) -> None:
        window = next(self._windows, None)
        if window is None:
            self._exhausted = True
            return
        self._chunks.append(self._prepare([frame.image for frame in window.frames]))
        self._loaded_until += len(window.frames)

    def _prepare(self, images: list[np.ndarray]) -> torch.Tensor:
        stacked = np.stack(images)
        full_scale = 65535.0 if stacked.dtype == np.uint16 else 255.0
        if stacked.dtype == np.uint16:
            # torch has few kernels for uint16 (none for some devices), so widen it before the copy.
            stacked = stacked.astype(np.int32)
        pixels = torch.from_numpy(stacked).to(self._device)
        frames = pixels.permute(0, 3, 1, 2).float() / full_scale * 2.0 - 1.0
        spatial = self._spatial
        size = (spatial.height, spatial.width)
        downscaling = size[0] < frames.shape[2] or size[1] < frames.shape[3]
        frames = F.interpolate(frames, size=size, mode="bicubic", align_corners=False, antialias=downscaling)
        frames = frames.clamp(-1.0, 1.0)
        frames = F.pad(frames, (0, spatial.pad_right, 0, spatial.pad_bottom), mode=PAD_MODE)
        return frames.to(self._dtype).to(self._storage_device)


class FrameNoise:
    """The seeded initial noise of the whole padded frame, drawn step by step as an untiled run draws it.

    Tiles take crops of the same draws, so a tiled run starts from the noise of the untiled run.
    """

    def __init__(self, spatial: SpatialPlan, weights: FlashVSRWeights, seed: int) -> None:
        device = weights.device
        dtype = weights.dtype
        shape = (spatial.padded_height // LATENT_SCALE, spatial.padded_width // LATENT_SCALE)
        self._source = NoiseSource(shape, device, dtype, seed=seed)
        self._drawn: tuple[int, int, torch.Tensor] | None = None

    def take(self, start: int, stop: int) -> torch.Tensor:
        if self._drawn is None or self._drawn[:2] != (start, stop):
            self._drawn = (start, stop, self._source.take(start, stop))
        return self._drawn[2]

    def whole_clip(self, model_frames: int) -> torch.Tensor:
        latent_frames = (model_frames - 1) // 4
        slabs = []
        for plan in iter_step_plans():
            if plan.latent_start >= latent_frames:
                break
            slabs.append(self.take(plan.latent_start, plan.latent_stop))
        return torch.cat(slabs, dim=2)


class _TileNoise:
    def __init__(self, noise: FrameNoise, tile: Tile) -> None:
        self._noise = noise
        self._tile = tile

    def take(self, start: int, stop: int) -> torch.Tensor:
        return _crop_latents(self._noise.take(start, stop), self._tile)


class _TileFrames:
    def __init__(self, frames: LQFrames, tile: Tile) -> None:
        self._frames = frames
        self._tile = tile

    def get(self, start: int, stop: int) -> torch.Tensor:
        tile = self._tile
        return self._frames.get(start, stop)[..., tile.top : tile.bottom, tile.left : tile.right]

    def release_until(self, index: int) -> None:
        """Do nothing, because the upscaler releases the shared LQFrames once every tile finished the step."""


def _crop_latents(latents: torch.Tensor, tile: Tile) -> torch.Tensor:
    return latents[
        ...,
        tile.top // LATENT_SCALE : tile.bottom // LATENT_SCALE,
        tile.left // LATENT_SCALE : tile.right // LATENT_SCALE,
    ]


class TileStream:
    """The Tiny-Long loop for one tile: its own projector and decoder state, its own KV cache."""

    def __init__(
        self,
        tile: Tile,
        weights: FlashVSRWeights,
        frames: LQFrames,
        noise: FrameNoise,
        settings: SparseAttentionSettings,
        kv_offload: bool,
    ) -> None:
        self.tile = tile
        self.weights = tile_state_copy(weights)
        self.frames = _TileFrames(frames, tile)
        self.weights.tc_decoder.reset()
        streamer = DiTStreamer(self.weights, settings, kv_offload=kv_offload)
        self._steps: Iterator = streamer.run(self.frames, None, _TileNoise(noise, tile))

    def step(self, color_fix: str, writer: OutputWriter) -> None:
        output = next(self._steps)
        plan = output.plan
        dtype = self.weights.dtype
        cond = self.frames.get(plan.output_start, plan.output_stop).to(dtype).transpose(0, 1).unsqueeze(0)
        decoded = self.weights.tc_decoder.decode(output.latents, cond)
        fixed = apply_color_fix(color_fix, decoded, cond)
        writer.add(self.tile, fixed[0].transpose(0, 1), plan.output_start)


class OutputWriter:
    """Blends tile outputs with feathered weights, crops the padding off and emits real frames in order."""

    def __init__(
        self,
        spatial: SpatialPlan,
        tiles: list[Tile],
        emit: EmitFrame,
        high_bit_depth: bool,
        source_total: Callable[[], int | None],
    ) -> None:
        self._spatial = spatial
        self._source_total = source_total
        self._tiles = tiles
        self._emit = emit
        self._high_bit_depth = high_bit_depth
        self._weights = {tile: _tile_weights(tile, tiles) for tile in tiles}
        self._sum: torch.Tensor | None = None
        self._weight_sum: torch.Tensor | None = None
        self._first_index = 0
        self.emitted = 0

    def add(self, tile: Tile, frames: torch.Tensor, first_index: int) -> None:
        """Add a tile's output frames `[n, 3, h, w]` in [-1, 1] starting at output index `first_index`."""
        frames = frames.float()
        if len(self._tiles) == 1:
            self._sum, self._first_index = frames, first_index
            return
        weight = self._weights[tile].to(frames.device)
        if self._sum is None:
            shape = (frames.shape[0], 3, self._spatial.padded_height, self._spatial.padded_width)
            self._sum = torch.zeros(shape, device=frames.device)
            self._weight_sum = torch.zeros(shape[2:], device=frames.device)
            self._first_index = first_index
        self._sum[..., tile.top : tile.bottom, tile.left : tile.right] += frames * weight
        self._weight_sum[tile.top : tile.bottom, tile.left : tile.right] += weight

    def flush(self, start: int, stop: int) -> None:
        """Emit the blended frames `start`..`stop-1` that belong to the source, then start a new blend."""
        if self._sum is None:
            raise RuntimeError(f"no model output for frames {start}-{stop - 1}")
        if self._first_index != start:
            raise RuntimeError(f"model output starts at frame {self._first_index}, expected {start}")
        blended = self._sum if self._weight_sum is None else self._sum / self._weight_sum
        spatial = self._spatial
        cropped = blended[:, :, : spatial.height, : spatial.width]
        for offset, frame in enumerate(_to_images(cropped, self._high_bit_depth)):
            self._emit_real(start + offset, frame)
        self._sum = None
        self._weight_sum = None

    def _emit_real(self, index: int, frame: np.ndarray) -> None:
        # Frames at or past the source's frame count come from the tail padding and are dropped here. The
        # count is known by then: the step that outputs frame k has read LQ frame k + 4.
        total = self._source_total()
        if total is not None and index >= total:
            return
        if index != self.emitted:
            raise RuntimeError(f"model output frame {index} arrived where frame {self.emitted} was expected")
        self._emit(index, frame)
        self.emitted += 1


def _tile_weights(tile: Tile, tiles: list[Tile]) -> torch.Tensor:
    left = max(
        (other.right - tile.left for other in tiles if other.left < tile.left < other.right), default=0
    )
    right = max(
        (tile.right - other.left for other in tiles if tile.left < other.left < tile.right), default=0
    )
    top = max((other.bottom - tile.top for other in tiles if other.top < tile.top < other.bottom), default=0)
    bottom = max(
        (tile.bottom - other.top for other in tiles if tile.top < other.top < tile.bottom), default=0
    )
    columns = torch.tensor(feather_ramp(tile.width, left, right))
    rows = torch.tensor(feather_ramp(tile.height, top, bottom))
    return rows[:, None] * columns[None, :]


def _to_images(frames: torch.Tensor, high_bit_depth: bool) -> Iterator[np.ndarray]:
    full_scale = 65535.0 if high_bit_depth else 255.0
    scaled = ((frames.clamp(-1.0, 1.0) + 1.0) * (full_scale / 2.0)).round()
    pixels = scaled.permute(0, 2, 3, 1).cpu()
    pixels = pixels.to(torch.int32).numpy().astype(np.uint16 if high_bit_depth else np.uint8)
    yield from pixels


def _out_of_memory(variant: str, scale: int, detail: str) -> ModelError:
    advice = ["turn tiling on"]
    if scale > 2:
        advice.insert(0, f"choose a smaller scale than {scale}")
    if variant != "tiny_long":
        advice.append("use the tiny_long variant, whose memory does not grow with the video length")
    return ModelError(f"The GPU ran out of memory. To fix it, {', or '.join(advice)}.", detail=detail)


def _factory(variant: str) -> Callable[..., FlashVSRUpscaler]:
    def build(options: RuntimeOptions, params: UpscaleParams | None = None) -> FlashVSRUpscaler:
        return FlashVSRUpscaler(variant, options, params or UpscaleParams(variant=variant))

    return build


# Registry entries (see gpu/upscalers/__init__.py): each takes RuntimeOptions and the task's UpscaleParams.
tiny_long = _factory("tiny_long")
tiny = _factory("tiny")
full = _factory("full")
