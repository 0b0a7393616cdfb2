"""3-D rotary position embedding of the Wan DiT, computed for any latent frame index.

Each head is split into a temporal, a row and a column part (44/42/42 channels for 128-wide heads,
12/10/10 for 32-wide heads). Angles are computed in float64 from the absolute positions, so there is
no table and no limit on the frame index.
"""

from __future__ import annotations

import torch

ROPE_THETA = 10000.0


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Return the (temporal, row, column) channel counts of one head."""
    spatial = head_dim // 3
    return head_dim - 2 * spatial, spatial, spatial


def _axis_angles(axis_dim: int, positions: torch.Tensor) -> torch.Tensor:
    exponents = torch.arange(0, axis_dim, 2, dtype=torch.float64, device=positions.device)[: axis_dim // 2]
    inverse_frequencies = 1.0 / (ROPE_THETA ** (exponents / axis_dim))
    return torch.outer(positions.to(torch.float64), inverse_frequencies)


def rope_frequencies(head_dim: int, frame_positions: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Return complex128 rotations `[frames*rows*cols, 1, head_dim/2]` in (frame, row, col) token order."""
    temporal_dim, row_dim, col_dim = rope_axis_dims(head_dim)
    device = frame_positions.device
    frames = frame_positions.numel()
    angles_t = _axis_angles(temporal_dim, frame_positions)
    angles_r = _axis_angles(row_dim, torch.arange(rows, device=device))
    angles_c = _axis_angles(col_dim, torch.arange(cols, device=device))
    angles = torch.cat(
        [
            angles_t[:, None, None, :].expand(frames, rows, cols, -1),
            angles_r[None, :, None, :].expand(frames, rows, cols, -1),
            angles_c[None, None, :, :].expand(frames, rows, cols, -1),
        ],
        dim=-1,
    )
    rotations = torch.polar(torch.ones_like(angles), angles)
    return rotations.reshape(frames * rows * cols, 1, -1)


def apply_rope(x: torch.Tensor, rotations: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Rotate adjacent channel pairs of each head of `x` `[B, L, dim]`; the math runs in float64."""
    batch, length, dim = x.shape
    pairs = x.to(torch.float64).reshape(batch, length, num_heads, -1, 2)
    rotated = torch.view_as_real(torch.view_as_complex(pairs) * rotations)
    return rotated.reshape(batch, length, dim).to(x.dtype)
