"""Frames per second and peak memory of each FlashVSR variant with random weights.

By default the modules have the release sizes (Wan2.1-T2V-1.3B DiT, LQ projector, TCDecoder, Wan VAE
decoder), run in bfloat16 on CUDA, on a random LQ video at the output size 768x1408. `--reduced` swaps in
the tiny test-size modules and a 256x128 output so the script finishes on a CPU. `--attention dense` forces
the exact dense-masked attention path instead of FlexAttention, `both` measures the two.

Each measurement runs the variant once to warm up (FlexAttention compiles per shape) and reports the second
run. Throughput counts output frames; the padding frames the model reads beyond the end are not counted.

    python bench/gpu_throughput.py [--reduced] [--frames 45] [--variants tiny_long tiny full]
                                   [--attention flex|dense|both] [--device cuda|cpu] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpu.flashvsr import attention  # noqa: E402
from gpu.flashvsr.attention import SparseAttentionSettings  # noqa: E402
from gpu.flashvsr.config import WAN21_1_3B, DiTConfig, LQProjConfig  # noqa: E402
from gpu.flashvsr.dit import WanDiT  # noqa: E402
from gpu.flashvsr.lq_proj import CausalLQProjector  # noqa: E402
from gpu.flashvsr.pipeline import (  # noqa: E402
    FlashVSRFullPipeline,
    FlashVSRTinyLongPipeline,
    FlashVSRTinyPipeline,
    TensorFrameSource,
)
from gpu.flashvsr.tc_decoder import TCDecoder, TCDecoderConfig  # noqa: E402
from gpu.flashvsr.wan_vae import WanVAEDecoder, WanVAEDecoderConfig  # noqa: E402
from gpu.flashvsr.weights import FlashVSRWeights  # noqa: E402
from gpu.geometry import plan_frames  # noqa: E402

RELEASE_SIZE = {
    "dit": WAN21_1_3B,
    "lq_proj": LQProjConfig(),
    "tc": TCDecoderConfig.release(),
    "vae": WanVAEDecoderConfig.release(),
    "prompt_tokens": 512,
    "height": 768,
    "width": 1408,
}
REDUCED_SIZE = {
    "dit": DiTConfig(
        dim=64, in_dim=16, out_dim=16, ffn_dim=128, text_dim=32, freq_dim=32, num_heads=2, num_layers=2
    ),
    "lq_proj": LQProjConfig(hidden_dim1=32, hidden_dim2=48, out_dim=64),
    "tc": TCDecoderConfig(channels=(32, 16, 8, 8)),
    "vae": WanVAEDecoderConfig(dim=8),
    "prompt_tokens": 16,
    "height": 128,
    "width": 256,
}


def random_module(
    module_class, config, device: torch.device, dtype: torch.dtype, seed: int
) -> torch.nn.Module:
    """Build `module_class(config)` directly on `device` with random weights scaled by fan-in."""
    with torch.device("meta"):
        module = module_class(config)
    module = module.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if "norm" in name or "gamma" in name:
                tensor.fill_(1.0)
            elif tensor.dim() <= 1:
                tensor.zero_()
            else:
                fan_in = tensor[0].numel()
                tensor.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator)
    return module.to(dtype).eval().requires_grad_(False)


def build_weights(size: dict, device: torch.device, dtype: torch.dtype) -> FlashVSRWeights:
    dit = random_module(WanDiT, size["dit"], device, dtype, seed=0)
    prompt = torch.randn(1, size["prompt_tokens"], size["dit"].text_dim, device=device).to(dtype)
    return FlashVSRWeights(
        dit=dit,
        lq_projector=random_module(CausalLQProjector, size["lq_proj"], device, dtype, seed=1),
        prompt=prompt,
        tc_decoder=random_module(TCDecoder, size["tc"], device, dtype, seed=2),
        vae_decoder=random_module(WanVAEDecoder, size["vae"], device, dtype, seed=3),
    )


def run_variant(
    variant: str, weights: FlashVSRWeights, video: torch.Tensor, settings: SparseAttentionSettings
) -> None:
    if variant == "tiny_long":
        _, _, frames, height, width = video.shape
        FlashVSRTinyLongPipeline(weights)(
            TensorFrameSource(video), frames, height, width, lambda chunk, first: None, settings=settings
        )
    elif variant == "tiny":
        FlashVSRTinyPipeline(weights)(video, settings=settings)
    else:
        FlashVSRFullPipeline(weights)(video, settings=settings)


def measure(variant: str, weights, video, settings, device: torch.device, output_frames: int) -> dict:
    run_variant(variant, weights, video, settings)
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    run_variant(variant, weights, video, settings)
    synchronize(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "variant": variant,
        "seconds": round(seconds, 3),
        "frames_per_second": round(output_frames / seconds, 3),
        "peak_gpu_memory_gib": round(peak / 2**30, 2) if peak is not None else None,
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def force_dense_attention(enabled: bool) -> None:
    attention._flex_unavailable = enabled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reduced", action="store_true", help="Test-size modules and a 256x128 output, for a CPU."
    )
    parser.add_argument(
        "--frames", type=int, default=45, help="Source frames per run (default: %(default)s)."
    )
    parser.add_argument(
        "--variants", nargs="+", default=["tiny_long", "tiny", "full"], help="Variants to measure, in order."
    )
    parser.add_argument("--attention", choices=("flex", "dense", "both"), default="both")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="Also write the results to this file.")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type != "cuda" and not args.reduced:
        parser.error("release-size modules need CUDA; pass --reduced to run on the CPU")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    size = REDUCED_SIZE if args.reduced else RELEASE_SIZE
    model_frames = plan_frames(args.frames).model_frames
    video = torch.rand(1, 3, model_frames, size["height"], size["width"], device=device, dtype=dtype) * 2 - 1
    settings = SparseAttentionSettings.from_sparse_ratio(2.0, size["height"], size["width"])
    weights = build_weights(size, device, dtype)

    modes = ["flex", "dense"] if args.attention == "both" else [args.attention]
    if device.type != "cuda":
        modes = ["dense"]  # FlexAttention runs only on CUDA; the CPU always takes the dense-masked path
    results = []
    for mode in modes:
        force_dense_attention(mode == "dense")
        for variant in args.variants:
            result = measure(variant, weights, video, settings, device, args.frames)
            result.update(attention=mode, device=str(device), dtype=str(dtype).removeprefix("torch."))
            result.update(
                output=f"{size['width']}x{size['height']}", frames=args.frames, reduced=args.reduced
            )
            results.append(result)
            print(json.dumps(result), flush=True)
    force_dense_attention(False)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
