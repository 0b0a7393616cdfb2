"""FlashVSR v1.1 Full, Tiny and Tiny-Long pipelines around one shared DiT streaming loop.

Input is the preprocessed LQ video: frames already bicubic-upscaled to the output size, both sides
multiples of 128, values in [-1, 1], F = 8n + 1 >= 25 frames. The output has F - 4 frames, because
the model looks 4 frames ahead. Step 0 turns LQ frames 0-24 into 6 latent frames (output frames
0-20). Every later step turns 8 more LQ frames into 2 latent frames (8 output frames).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from gpu.flashvsr.attention import SparseAttentionSettings
from gpu.flashvsr.color_fix import apply_color_fix
from gpu.flashvsr.dit import KVCache, Observer
from gpu.flashvsr.weights import FlashVSRWeights
from gpu.params import Cancelled

logger = logging.getLogger(__name__)

LATENT_CHANNELS = 16
# Video frames per latent frame, and LQ frames the model reads beyond the last output frame.
TEMPORAL_STRIDE = 4
LOOKAHEAD_FRAMES = 4
MIN_INPUT_FRAMES = 25
FIRST_STEP_LATENTS = 6
LATER_STEP_LATENTS = 2
SPATIAL_ALIGN = 128
LATENT_SCALE = 8


class FrameSource(Protocol):
    """Random access to preprocessed LQ frames `[n, 3, H, W]` in [-1, 1]."""

    def get(self, start: int, stop: int) -> torch.Tensor: ...

    def release_until(self, index: int) -> None: ...


class TensorFrameSource:
    """A `FrameSource` over a whole LQ video tensor `[1, 3, F, H, W]`."""

    def __init__(self, video: torch.Tensor) -> None:
        self.video = video

    def get(self, start: int, stop: int) -> torch.Tensor:
        return self.video[0, :, start:stop].transpose(0, 1)

    def release_until(self, index: int) -> None:
        """Nothing to free: the caller owns the tensor."""


@dataclass(frozen=True)
class StepPlan:
    """Latent, LQ-frame and output-frame ranges of one DiT step."""

    index: int
    latent_start: int
    latent_stop: int
    projector_clips: tuple[tuple[int, int], ...]
    output_start: int
    output_stop: int


@dataclass(frozen=True)
class StepProgress:
    """Progress after one DiT step (and, for Tiny-Long, its decode)."""

    step: int
    total_steps: int
    output_frames_done: int
    total_output_frames: int


StepCallback = Callable[[StepProgress], None]
FramesCallback = Callable[[torch.Tensor, int], None]


def plan_steps(num_frames: int) -> list[StepPlan]:
    """Return the streaming schedule for an input of `num_frames` = 8n + 1 frames (n - 2 steps)."""
    check_frame_count(num_frames)
    return list(itertools.islice(iter_step_plans(), (num_frames - 1) // 8 - 2))


def iter_step_plans() -> Iterator[StepPlan]:
    """Yield the streaming schedule without end, for callers that learn the video length while reading."""
    yield StepPlan(
        index=0,
        latent_start=0,
        latent_stop=FIRST_STEP_LATENTS,
        projector_clips=((0, 1),) + tuple((4 * i + 1, 4 * i + 5) for i in range(FIRST_STEP_LATENTS)),
        output_start=0,
        output_stop=21,
    )
    for k in itertools.count(1):
        base = 8 * k + 17
        yield StepPlan(
            index=k,
            latent_start=4 + 2 * k,
            latent_stop=6 + 2 * k,
            projector_clips=((base, base + 4), (base + 4, base + 8)),
            output_start=8 * k + 13,
            output_stop=8 * k + 21,
        )


def check_frame_count(num_frames: int) -> None:
    if num_frames < MIN_INPUT_FRAMES or (num_frames - 1) % 8:
        raise ValueError(
            f"the LQ video has {num_frames} frames; FlashVSR needs 8n+1 frames and at least "
            f"{MIN_INPUT_FRAMES}. Pad the clip with copies of its last frame"
        )


def check_frame_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0 or height % SPATIAL_ALIGN or width % SPATIAL_ALIGN:
        raise ValueError(
            f"LQ frames are {width}x{height}; both sides must be positive multiples of "
            f"{SPATIAL_ALIGN} pixels. Pad or crop the upscaled frames first"
        )


def check_video(video: torch.Tensor) -> None:
    """Raise ValueError unless `video` is a `[1, 3, 8n+1, H, W]` float tensor in [-1, 1]."""
    if video.dim() != 5 or video.shape[0] != 1 or video.shape[1] != 3:
        raise ValueError(f"LQ video must have shape [1, 3, F, H, W], got {list(video.shape)}")
    if not video.is_floating_point():
        raise ValueError(f"LQ video must be a float tensor in [-1, 1], got {video.dtype}")
    check_frame_count(video.shape[2])
    check_frame_size(video.shape[3], video.shape[4])
    low, high = video.aminmax()
    if low < -1.0 or high > 1.0 or not torch.isfinite(low + high):
        raise ValueError(f"LQ video values must lie in [-1, 1], got [{low.item():.3g}, {high.item():.3g}]")


class NoiseSource:
    """Initial noise per latent slice: slices of a given tensor, or seeded draws made step by step.

    Seeded draws take one `randn` per step in schedule order, so every variant gets the same noise for
    the same seed and size, and no noise for the whole video is held at once.
    """

    def __init__(
        self,
        shape_hw: tuple[int, int],
        device: torch.device,
        dtype: torch.dtype,
        noise: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.shape_hw = shape_hw
        self.device = device
        self.dtype = dtype
        self.noise = noise
        self.generator = None
        if noise is None:
            self.generator = torch.Generator(device=device).manual_seed(seed)

    def take(self, start: int, stop: int) -> torch.Tensor:
        if self.noise is not None:
            return self.noise[:, :, start:stop].to(device=self.device, dtype=self.dtype)
        shape = (1, LATENT_CHANNELS, stop - start, *self.shape_hw)
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=self.dtype)


def check_noise(noise: torch.Tensor, num_frames: int, height: int, width: int) -> None:
    expected = (
        1,
        LATENT_CHANNELS,
        (num_frames - 1) // TEMPORAL_STRIDE,
        height // LATENT_SCALE,
        width // LATENT_SCALE,
    )
    if tuple(noise.shape) != expected:
        raise ValueError(f"noise must have shape {list(expected)}, got {list(noise.shape)}")


def _scoped(observer: Observer | None, prefix: str) -> Observer | None:
    if observer is None:
        return None
    return lambda name, tensor: observer(f"{prefix}{name}", tensor)


class HostKVCache(KVCache):
    """A KV cache kept in host memory between steps; each layer's K/V visit the GPU only while in use."""

    def __init__(self, max_slabs: int, device: torch.device) -> None:
        super().__init__(max_slabs)
        self.device = device

    def get(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        entry = super().get(layer)
        if entry is None:
            return None
        keys, values = entry
        return keys.to(self.device, non_blocking=True), values.to(self.device, non_blocking=True)

    def store(self, layer: int, keys: torch.Tensor, values: torch.Tensor, windows_per_slab: int) -> None:
        pin = keys.device.type == "cuda"
        host_keys = keys.to("cpu").pin_memory() if pin else keys.to("cpu")
        host_values = values.to("cpu").pin_memory() if pin else values.to("cpu")
        super().store(layer, host_keys, host_values, windows_per_slab)


@dataclass
class StepOutput:
    plan: StepPlan
    latents: torch.Tensor


class DiTStreamer:
    """The DiT streaming loop shared by all variants: LQ projection, one-step denoise, KV cache."""

    def __init__(
        self, weights: FlashVSRWeights, settings: SparseAttentionSettings, kv_offload: bool = False
    ) -> None:
        self.weights = weights
        self.settings = settings
        self.kv_offload = kv_offload

    @torch.no_grad()
    def run(
        self,
        source: FrameSource,
        num_frames: int | None,
        noise: NoiseSource,
        observer: Observer | None = None,
    ) -> Iterator[StepOutput]:
        """Yield the denoised latents of each step in order.

        With `num_frames` None the schedule has no end and the caller stops iterating once the output
        covers the video.
        """
        dit = self.weights.dit
        prompt = dit.prepare_prompt(self.weights.prompt, observer)
        cache = (
            HostKVCache(self.settings.kv_slabs, self.weights.device)
            if self.kv_offload
            else KVCache(self.settings.kv_slabs)
        )
        self.weights.lq_projector.reset()
        plans = iter_step_plans() if num_frames is None else plan_steps(num_frames)
        for plan in plans:
            step_observer = _scoped(observer, f"step{plan.index}.")
            features = self._project(source, plan, step_observer)
            noisy = noise.take(plan.latent_start, plan.latent_stop)
            v_pred = dit.stream_step(
                noisy, features, plan.latent_start, prompt, cache, self.settings, step_observer
            )
            latents = noisy - v_pred
            if step_observer is not None:
                step_observer("v_pred", v_pred)
                step_observer("latents", latents)
            yield StepOutput(plan=plan, latents=latents)

    def _project(self, source: FrameSource, plan: StepPlan, observer: Observer | None) -> list[torch.Tensor]:
        per_layer: list[list[torch.Tensor]] = []
        for start, stop in plan.projector_clips:
            clip = source.get(start, stop).to(device=self.weights.device, dtype=self.weights.dtype)
            outputs = self.weights.lq_projector.stream_forward(clip.transpose(0, 1).unsqueeze(0))
            if outputs is None:
                continue
            per_layer = per_layer or [[] for _ in outputs]
            for layer, tokens in enumerate(outputs):
                per_layer[layer].append(tokens)
        features = [torch.cat(parts, dim=1) for parts in per_layer]
        if observer is not None:
            observer("lq_features", features[0])
        return features


class _PipelineBase:
    # With kv_offload the self-attention KV cache waits in host memory between steps.
    kv_offload = False

    def __init__(self, weights: FlashVSRWeights) -> None:
        self.weights = weights

    def _noise(
        self, noise: torch.Tensor | None, seed: int, num_frames: int, height: int, width: int
    ) -> NoiseSource:
        if noise is not None:
            check_noise(noise, num_frames, height, width)
        hw = (height // LATENT_SCALE, width // LATENT_SCALE)
        return NoiseSource(hw, self.weights.device, self.weights.dtype, noise=noise, seed=seed)


def _log_start(
    variant: str, num_frames: int, height: int, width: int, steps: int, settings: SparseAttentionSettings
) -> None:
    logger.info(
        "FlashVSR %s: %d input frames at %dx%d, %d DiT steps, topk_ratio %.3g, local_range %d, kv_ratio %g",
        variant,
        num_frames,
        width,
        height,
        steps,
        settings.topk_ratio,
        settings.local_range,
        settings.kv_ratio,
    )


def _report(
    on_step: StepCallback | None,
    should_cancel: Callable[[], bool] | None,
    plan: StepPlan,
    total_steps: int,
    total_output: int,
) -> None:
    if on_step is not None:
        on_step(StepProgress(plan.index + 1, total_steps, plan.output_stop, total_output))
    if should_cancel is not None and should_cancel():
        raise Cancelled(f"cancelled after step {plan.index + 1} of {total_steps}")


class _WholeClipPipeline(_PipelineBase):
    """Tiny and Full: run every DiT step, then decode all latents at once."""

    variant = ""

    @torch.no_grad()
    def __call__(
        self,
        lq_video: torch.Tensor,
        *,
        settings: SparseAttentionSettings | None = None,
        color_fix: str = "adain",
        noise: torch.Tensor | None = None,
        seed: int = 0,
        on_step: StepCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        observer: Observer | None = None,
    ) -> torch.Tensor:
        """Upscale `lq_video` `[1, 3, F, H, W]`; return `[1, 3, F - 4, H, W]` float32 on the CPU."""
        # 1. Check inputs.
        check_video(lq_video)
        _, _, num_frames, height, width = lq_video.shape
        settings = settings or SparseAttentionSettings()
        noise_source = self._noise(noise, seed, num_frames, height, width)
        source = TensorFrameSource(lq_video)
        total_steps = len(plan_steps(num_frames))
        total_output = num_frames - LOOKAHEAD_FRAMES
        _log_start(self.variant, num_frames, height, width, total_steps, settings)

        # 2. DiT streaming loop.
        latents = []
        for step in DiTStreamer(self.weights, settings, self.kv_offload).run(
            source, num_frames, noise_source, observer
        ):
            latents.append(step.latents)
            _report(on_step, should_cancel, step.plan, total_steps, total_output)

        # 3. Decode, then 4. colour fix against the LQ frames with the same index.
        cond = lq_video[:, :, :total_output].to(device=self.weights.device, dtype=self.weights.dtype)
        decoded = self._decode(torch.cat(latents, dim=2), cond)
        if observer is not None:
            observer(f"{self.variant}.decoder_out", decoded)
        return apply_color_fix(color_fix, decoded, cond).float().cpu()

    def _decode(self, latents: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class FlashVSRTinyPipeline(_WholeClipPipeline):
    """Decodes all latents with the Tiny Conditional Decoder in one call."""

    variant = "tiny"

    def _decode(self, latents: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        decoder = self.weights.tc_decoder
        if decoder is None:
            raise ValueError("the Tiny pipeline needs weights loaded with the TCDecoder (variant 'tiny')")
        decoder.reset()
        return decoder.decode(latents, cond)


class FlashVSRFullPipeline(_WholeClipPipeline):
    """Decodes all latents with the Wan2.1 VAE decoder, optionally in spatial tiles."""

    variant = "full"

    def __init__(self, weights: FlashVSRWeights, tiled: bool = False) -> None:
        super().__init__(weights)
        self.tiled = tiled

    def _decode(self, latents: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        decoder = self.weights.vae_decoder
        if decoder is None:
            raise ValueError("the Full pipeline needs weights loaded with the Wan VAE (variant 'full')")
        return decoder.decode(latents, tiled=self.tiled)


class FlashVSRTinyLongPipeline(_PipelineBase):
    """Decodes and colour-fixes each step as it finishes; memory stays flat in the video length."""

    @torch.no_grad()
    def __call__(
        self,
        source: FrameSource,
        num_frames: int,
        height: int,
        width: int,
        on_frames: FramesCallback,
        *,
        settings: SparseAttentionSettings | None = None,
        color_fix: str = "adain",
        noise: torch.Tensor | None = None,
        seed: int = 0,
        on_step: StepCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        observer: Observer | None = None,
    ) -> int:
        """Upscale `num_frames` LQ frames pulled from `source`; return the output frame count (F - 4).

        `on_frames(frames, first_index)` receives each step's output `[n, 3, H, W]` float32 on the CPU.
        Frames below the next step's first needed index are released from `source` after each step.
        """
        # 1. Check inputs.
        check_frame_count(num_frames)
        check_frame_size(height, width)
        decoder = self.weights.tc_decoder
        if decoder is None:
            raise ValueError(
                "the Tiny-Long pipeline needs weights loaded with the TCDecoder (variant 'tiny_long')"
            )
        settings = settings or SparseAttentionSettings()
        noise_source = self._noise(noise, seed, num_frames, height, width)
        checked = _CheckedSource(source, height, width)
        total_steps = len(plan_steps(num_frames))
        total_output = num_frames - LOOKAHEAD_FRAMES
        _log_start("tiny_long", num_frames, height, width, total_steps, settings)

        # 2. DiT streaming loop with 3. per-step decode and 4. colour fix.
        decoder.reset()
        for step in DiTStreamer(self.weights, settings, self.kv_offload).run(
            checked, num_frames, noise_source, observer
        ):
            plan = step.plan
            cond = checked.get(plan.output_start, plan.output_stop)
            cond = cond.to(device=self.weights.device, dtype=self.weights.dtype)
            cond = cond.transpose(0, 1).unsqueeze(0)
            decoded = decoder.decode(step.latents, cond)
            if observer is not None:
                observer("tiny_long.decoder_out", decoded)
            fixed = apply_color_fix(color_fix, decoded, cond)
            on_frames(fixed[0].transpose(0, 1).float().cpu(), plan.output_start)
            source.release_until(plan.output_stop)
            _report(on_step, should_cancel, plan, total_steps, total_output)
        return total_output


class _CheckedSource:
    """Wraps a FrameSource and checks each slice it returns."""

    def __init__(self, source: FrameSource, height: int, width: int) -> None:
        self.source = source
        self.height = height
        self.width = width

    def get(self, start: int, stop: int) -> torch.Tensor:
        frames = self.source.get(start, stop)
        expected = (stop - start, 3, self.height, self.width)
        if tuple(frames.shape) != expected:
            raise ValueError(
                f"frame source returned {list(frames.shape)} for frames {start}-{stop - 1}, "
                f"expected {list(expected)}"
            )
        return frames

    def release_until(self, index: int) -> None:
        self.source.release_until(index)


def output_frame_count(num_frames: int) -> int:
    """Return how many frames a call with `num_frames` input frames produces."""
    check_frame_count(num_frames)
    return num_frames - LOOKAHEAD_FRAMES


def padded_input_frames(source_frames: int) -> int:
    """Return the smallest valid input length 8n+1 >= 25 whose output covers `source_frames` frames."""
    needed = max(source_frames + LOOKAHEAD_FRAMES, MIN_INPUT_FRAMES)
    return 8 * math.ceil((needed - 1) / 8) + 1
