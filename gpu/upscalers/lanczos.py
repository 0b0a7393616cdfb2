"""The Lanczos baseline: no model and no weights, the decoder's scale filter does all the work."""

from __future__ import annotations

from gpu.geometry import OutputGeometry
from gpu.params import RuntimeOptions, UpscaleParams
from gpu.upscalers.base import (
    LANCZOS_WINDOW,
    CancelHook,
    EmitFrame,
    FrameSource,
    LQSpec,
    read_windows,
)


class LanczosUpscaler:
    """Scale each frame with Lanczos resampling in the decoder's filter graph and pass it through."""

    label = "Lanczos baseline (no model)"
    window = LANCZOS_WINDOW

    def __init__(self, options: RuntimeOptions | None = None, params: UpscaleParams | None = None) -> None:
        # The baseline has no tuning of its own; it accepts options and params like every registered factory.
        del options, params

    def lq_spec(self, geometry: OutputGeometry, *, high_bit_depth: bool) -> LQSpec:
        pix_fmt = "yuv420p10le" if high_bit_depth else "yuv420p"
        return LQSpec(width=geometry.width, height=geometry.height, pix_fmt=pix_fmt, interpolation="lanczos")

    def run(
        self, source: FrameSource, geometry: OutputGeometry, emit: EmitFrame, check_cancel: CancelHook
    ) -> None:
        for window in read_windows(source, self.window, check_cancel):
            for frame in window.real_frames:
                emit(frame.index, frame.image)
