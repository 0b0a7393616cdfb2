"""Strict state-dict loading shared by every FlashVSR module.

A missing, unexpected or mis-shaped key raises `WeightLoadError` naming the file, the key and the expected
shape, so a wrong or truncated weight file fails before any tensor is copied.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from gpu.params import ModelError


class WeightLoadError(ModelError):
    """A weight file is missing, unreadable or does not match the module layout."""

    def __init__(self, detail: str) -> None:
        super().__init__("The FlashVSR weights could not be loaded.", detail=detail)


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


def check_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise `WeightLoadError` unless `state_dict` has exactly the module's keys and shapes."""
    expected = module.state_dict()
    for key, tensor in expected.items():
        if key not in state_dict:
            raise WeightLoadError(
                f"{source}: missing key {key!r} (expected shape {_shape_text(tensor.shape)}); "
                "the file is incomplete or belongs to another model"
            )
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise WeightLoadError(
                f"{source}: key {key!r} has shape {_shape_text(state_dict[key].shape)}, "
                f"expected shape {_shape_text(tensor.shape)}"
            )
    unexpected = sorted(set(state_dict) - set(expected))
    if unexpected:
        raise WeightLoadError(
            f"{source}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected in all); "
            "the file belongs to another model or version"
        )


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Check keys and shapes, then load `state_dict` into `module` and return it.

    A module on the meta device takes the file's tensors as they are (dtype included). A materialised module
    keeps its own dtype: the values are copied and converted, so a bfloat16 file loads into a float32 module.
    """
    check_state_dict(module, state_dict, source)
    is_meta = any(p.is_meta for p in module.parameters())
    module.load_state_dict(dict(state_dict), strict=True, assign=is_meta)
    return module
