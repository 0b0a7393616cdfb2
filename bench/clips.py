"""Synthetic test clips for the benchmarks: moving colour bars in H.264 with an AAC tone."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_bench_clip(
    path: Path, *, frames: int, size: tuple[int, int], rate: Fraction = Fraction(25)
) -> Path:
    """Write an MP4 of `frames` frames at `size` (width, height) with stereo AAC audio of the same length."""
    width, height = size
    container = av.open(str(path), "w")

    video = container.add_stream("libx264", rate=rate)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.options = {"preset": "veryfast", "crf": "20"}
    audio = container.add_stream("aac", rate=48000, layout="stereo")

    samples_per_frame = int(48000 / rate)
    columns = np.arange(width)
    for index in range(frames):
        shade = ((columns + 4 * index) % 256).astype(np.uint8)
        pixels = np.stack(
            [
                np.broadcast_to(shade, (height, width)),
                np.full((height, width), (index * 3) % 256, np.uint8),
                np.broadcast_to(shade[::-1], (height, width)),
            ],
            axis=-1,
        )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame.pts = index
        frame.time_base = 1 / rate
        for packet in video.encode(frame):
            container.mux(packet)
        _encode_tone(container, audio, index * samples_per_frame, samples_per_frame)

    for stream in (video, audio):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()
    return path


def _encode_tone(container, stream, first_sample: int, count: int) -> None:
    t = np.arange(first_sample, first_sample + count) / 48000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
    frame.sample_rate = 48000
    frame.pts = first_sample
    for packet in stream.encode(frame):
        container.mux(packet)
