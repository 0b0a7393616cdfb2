"""Small PyAV-generated media files for the web tests (a few frames each, written in well under a second)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, *, frames: int = 5, width: int = 64, height: int = 48, fps: int = 10) -> Path:
    """Write an H.264 MP4 with `frames` frames of a moving gradient."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(frames):
            image = np.zeros((height, width, 3), dtype=np.uint8)
            image[..., 0] = (np.arange(width) * 4 + index * 10) % 256
            image[..., 1] = (np.arange(height)[:, None] * 5) % 256
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_audio_only(path: Path, *, seconds: float = 0.5, rate: int = 16000) -> Path:
    """Write an AAC-in-MP4 (m4a) file with a sine tone and no video stream."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = int(seconds * rate)
        tone = (np.sin(np.arange(samples) * 2 * np.pi * 440 / rate) * 0.3).astype(np.float32)
        chunk = 1024
        for start in range(0, samples, chunk):
            piece = tone[start : start + chunk].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
