"""Every pipeline against the reference cases: masks exact, tensors within the module's tolerances."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gpu.flashvsr import conformance
from gpu.flashvsr.attention import SparseAttentionSettings
from gpu.flashvsr.dit import KVCache
from gpu.flashvsr.weights import load_dit, load_lq_projector, load_prompt

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_ROOT = Path(
    os.environ.get("FLASHVSR_CONFORMANCE_DIR", REPO_ROOT.parent / "shared" / "conformance")
)


def case_dirs() -> list[Path]:
    if not CONFORMANCE_ROOT.is_dir():
        return []
    return sorted(p for p in CONFORMANCE_ROOT.iterdir() if (p / "case.json").is_file())


CASES = case_dirs()
_RESULTS: dict[tuple[Path, str], list[conformance.Comparison]] = {}


def results_for(case_dir: Path, variant: str) -> list[conformance.Comparison]:
    """Run one variant on one case once per session; later tests reuse the comparisons."""
    if (case_dir, variant) not in _RESULTS:
        _RESULTS[(case_dir, variant)] = conformance.run_case(case_dir, [variant])
    return _RESULTS[(case_dir, variant)]


skip_without_cases = pytest.mark.skipif(not CASES, reason=f"no conformance cases under {CONFORMANCE_ROOT}")


@pytest.mark.conformance
@skip_without_cases
@pytest.mark.parametrize("variant", conformance.VARIANTS)
@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_pipeline_matches_reference(case_dir, variant):
    results = results_for(case_dir, variant)
    failures = [r.line() for r in results if not r.passed]
    assert results, f"{variant} produced no tensor that {case_dir.name} stores"
    assert not failures, "\n".join(failures)


@pytest.mark.conformance
@skip_without_cases
@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_every_stored_tensor_is_compared(case_dir):
    expected = load_file(str(case_dir / "expected.safetensors"))
    compared = {
        r.name.split(":", 1)[1] for variant in conformance.VARIANTS for r in results_for(case_dir, variant)
    }
    assert sorted(set(expected) - compared) == []


@pytest.mark.conformance
@skip_without_cases
@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_step0_masks_match_reference(case_dir):
    """Block masks of the first step, main and sparse settings, straight from the DiT."""
    expected = load_file(str(case_dir / "expected.safetensors"))
    runner = conformance.CaseRunner(case_dir)
    dit = load_dit(case_dir).float()
    projector = load_lq_projector(case_dir).float()
    prompt = dit.prepare_prompt(load_prompt(case_dir, dit.config.text_dim).float())
    projector.reset()
    clips = [runner.lq_video[:, :, max(0, 4 * i - 3) : 4 * i + 1] for i in range(7)]
    features = torch.cat(
        [out[0] for clip in clips if (out := projector.stream_forward(clip)) is not None], dim=1
    )
    last = dit.config.num_layers - 1
    sparse = runner.case["extra_runs"]["sparse_variant"]
    for prefix, settings in [
        ("", runner.settings),
        (
            "sparse.",
            SparseAttentionSettings(sparse["topk_ratio"], sparse["local_range"], runner.settings.kv_ratio),
        ),
    ]:
        masks = {}
        dit.stream_step(
            runner.noise[:, :, :6], [features], 0, prompt, KVCache(3), settings, masks.__setitem__
        )
        for layer in (0, last):
            assert torch.equal(masks[f"mask.layer{layer}"], expected[f"{prefix}step0.mask.layer{layer}"]), (
                f"{prefix}step0 mask of layer {layer} differs"
            )


def test_compare_flags_flipped_mask_block():
    expected = torch.ones(1, 2, 6, 24, dtype=torch.bool)
    actual = expected.clone()
    actual[0, 1, 3, 5] = False
    result = conformance.compare("step1.mask.layer0", actual, expected)
    assert not result.passed
    assert "1 blocks differ" in result.note


def test_compare_applies_tolerance():
    expected = torch.zeros(4)
    assert conformance.compare("step0.v_pred", expected + 4e-5, expected).passed
    assert not conformance.compare("step0.v_pred", expected + 6e-5, expected).passed


def test_compare_uint8_allows_rare_off_by_one():
    expected = torch.full((256, 384, 3), 100, dtype=torch.uint8)
    few = expected.clone()
    few.view(-1)[:200] += 1
    many = expected.clone()
    many.view(-1)[:1000] += 1
    assert conformance.compare("tiny.output_uint8.frame0", few, expected).passed
    assert not conformance.compare("tiny.output_uint8.frame0", many, expected).passed
    jump = expected.clone()
    jump[0, 0, 0] += 2
    assert not conformance.compare("tiny.output_uint8.frame0", jump, expected).passed


def test_command_rejects_missing_case(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        conformance.main([str(tmp_path)])
    assert exited.value.code == 2
    assert "case.json not found" in capsys.readouterr().err


@pytest.mark.conformance
@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@skip_without_cases
@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_cuda_float32_matches_reference(case_dir):
    """FlexAttention and the CUDA kernels in float32 with TF32 off stay within the CPU tolerances."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results = conformance.run_case(case_dir, ["tiny", "sparse"], device="cuda")
    failures = [r.line() for r in results if not r.passed]
    assert results
    assert not failures, "\n".join(failures)
