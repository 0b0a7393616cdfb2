"""Pipelines on a small random model: schedule, input checks, Tiny vs Tiny-Long, progress and cancel."""

from __future__ import annotations

import pytest
import torch

from gpu.flashvsr.attention import SparseAttentionSettings
from gpu.flashvsr.pipeline import (
    FlashVSRFullPipeline,
    FlashVSRTinyLongPipeline,
    FlashVSRTinyPipeline,
    TensorFrameSource,
    output_frame_count,
    padded_input_frames,
    plan_steps,
)
from gpu.params import Cancelled

SETTINGS = SparseAttentionSettings(topk_ratio=2.0, local_range=11, kv_ratio=3.0)


def lq_video(frames: int, height: int = 128, width: int = 128, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, frames, height, width, generator=generator) * 2 - 1


class RecordingSource(TensorFrameSource):
    """Records every request with the release mark in force at that moment."""

    def __init__(self, video: torch.Tensor) -> None:
        super().__init__(video)
        self.released: list[int] = []
        self.requests: list[tuple[int, int, int]] = []

    def get(self, start: int, stop: int) -> torch.Tensor:
        mark = self.released[-1] if self.released else 0
        self.requests.append((start, stop, mark))
        return super().get(start, stop)

    def release_until(self, index: int) -> None:
        self.released.append(index)


def run_tiny_long(weights, video, **kwargs):
    chunks: list[tuple[int, torch.Tensor]] = []
    source = RecordingSource(video)
    _, _, frames, height, width = video.shape
    count = FlashVSRTinyLongPipeline(weights)(
        source,
        frames,
        height,
        width,
        lambda chunk, start: chunks.append((start, chunk)),
        settings=SETTINGS,
        **kwargs,
    )
    return count, chunks, source


def test_schedule_for_41_frames():
    steps = plan_steps(41)
    assert len(steps) == 3
    assert [(s.latent_start, s.latent_stop) for s in steps] == [(0, 6), (6, 8), (8, 10)]
    assert [(s.output_start, s.output_stop) for s in steps] == [(0, 21), (21, 29), (29, 37)]
    assert steps[0].projector_clips[:3] == ((0, 1), (1, 5), (5, 9))
    assert steps[0].projector_clips[-1] == (21, 25)
    assert steps[1].projector_clips == ((25, 29), (29, 33))
    assert steps[2].projector_clips == ((33, 37), (37, 41))


def test_schedule_past_1024_latent_frames():
    steps = plan_steps(8 * 600 + 1)
    assert len(steps) == 598
    assert steps[-1].latent_stop == 1200
    assert steps[-1].output_stop == 8 * 600 - 3


@pytest.mark.parametrize("frames", [17, 24, 40])
def test_frame_count_must_be_8n_plus_1(frames):
    with pytest.raises(ValueError, match="needs 8n\\+1 frames and at least 25"):
        plan_steps(frames)


def test_padding_rule_covers_source():
    assert padded_input_frames(21) == 25
    assert padded_input_frames(37) == 41
    assert padded_input_frames(100) == 105
    assert output_frame_count(105) == 101


def test_tiny_rejects_bad_inputs(small_weights):
    pipeline = FlashVSRTinyPipeline(small_weights)
    with pytest.raises(ValueError, match="shape \\[1, 3, F, H, W\\]"):
        pipeline(torch.zeros(3, 25, 128, 128))
    with pytest.raises(ValueError, match="multiples of 128 pixels"):
        pipeline(torch.zeros(1, 3, 25, 128, 192))
    with pytest.raises(ValueError, match="must lie in \\[-1, 1\\]"):
        pipeline(torch.full((1, 3, 25, 128, 128), 2.0))
    with pytest.raises(ValueError, match="noise must have shape \\[1, 16, 6, 16, 16\\]"):
        pipeline(lq_video(25), noise=torch.zeros(1, 16, 5, 16, 16))


def test_tiny_long_equals_tiny(small_weights):
    video = lq_video(33)
    tiny = FlashVSRTinyPipeline(small_weights)(video, settings=SETTINGS, seed=3)
    count, chunks, source = run_tiny_long(small_weights, video, seed=3)
    assert tiny.shape == (1, 3, 29, 128, 128)
    assert count == 29
    assert [start for start, _ in chunks] == [0, 21]
    assert [chunk.shape[0] for _, chunk in chunks] == [21, 8]
    long_output = torch.cat([chunk for _, chunk in chunks]).transpose(0, 1).unsqueeze(0)
    assert (long_output - tiny).abs().max() < 1e-5
    assert tiny.abs().max() <= 1.0


def test_tiny_long_releases_consumed_frames(small_weights):
    _, _, source = run_tiny_long(small_weights, lq_video(41))
    assert source.released == [21, 29, 37]
    early = [(start, mark) for start, _, mark in source.requests if start < mark]
    assert not early, f"frames requested after their release: {early}"


def test_tiny_long_checks_source_frames(small_weights):
    class ShortSource(TensorFrameSource):
        def get(self, start, stop):
            return super().get(start, stop)[:, :, :64]

    with pytest.raises(ValueError, match="frame source returned"):
        FlashVSRTinyLongPipeline(small_weights)(ShortSource(lq_video(25)), 25, 128, 128, lambda c, s: None)


def test_seed_decides_noise(small_weights):
    video = lq_video(25)
    first = FlashVSRTinyPipeline(small_weights)(video, seed=1, color_fix="none")
    again = FlashVSRTinyPipeline(small_weights)(video, seed=1, color_fix="none")
    other = FlashVSRTinyPipeline(small_weights)(video, seed=2, color_fix="none")
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-3


def test_progress_reports_each_step(small_weights):
    reports = []
    FlashVSRTinyPipeline(small_weights)(lq_video(41), on_step=reports.append)
    assert [r.step for r in reports] == [1, 2, 3]
    assert {r.total_steps for r in reports} == {3}
    assert [r.output_frames_done for r in reports] == [21, 29, 37]
    assert reports[-1].total_output_frames == 37


def test_cancel_stops_after_current_step(small_weights):
    reports = []
    with pytest.raises(Cancelled):
        run_tiny_long(small_weights, lq_video(41), on_step=reports.append, should_cancel=lambda: True)
    assert len(reports) == 1


def test_full_needs_vae(small_weights):
    with pytest.raises(ValueError, match="needs weights loaded with the Wan VAE"):
        FlashVSRFullPipeline(small_weights)(lq_video(25))


def test_unknown_color_fix_propagates(small_weights):
    with pytest.raises(ValueError):
        FlashVSRTinyPipeline(small_weights)(lq_video(25), color_fix="lab")


@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_tiny_long_bfloat16_on_cuda_close_to_cpu(small_weights, tmp_path):
    from small_models import write_release_folder

    from gpu.flashvsr.weights import load_weights

    folder = write_release_folder(tmp_path / "weights", small_weights)
    cuda_weights = load_weights(folder, "tiny_long", "cuda")
    assert cuda_weights.dit.patch_embedding.weight.dtype == torch.bfloat16
    video = lq_video(41, 256, 256)
    noise = torch.randn(1, 16, 10, 32, 32, generator=torch.Generator().manual_seed(5))
    reference = FlashVSRTinyPipeline(small_weights)(video, settings=SETTINGS, noise=noise)
    count, chunks, _ = run_tiny_long(cuda_weights, video, noise=noise)
    output = torch.cat([chunk for _, chunk in chunks]).transpose(0, 1).unsqueeze(0)
    assert count == 37
    assert output.dtype == torch.float32
    assert (output - reference).abs().mean() < 0.05
