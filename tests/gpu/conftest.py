"""Small PyAV-generated clips for the pipeline tests."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

# 16.16 fixed-point display matrices (a, b, c, d) that players read as "rotate clockwise by N degrees".
_DISPLAY_MATRICES = {
    90: (0, 0x10000, -0x10000, 0),
    180: (-0x10000, 0, 0, -0x10000),
    270: (0, -0x10000, 0x10000, 0),
}


def write_clip(
    path: Path,
    *,
    frames: int,
    size: tuple[int, int] = (64, 48),
    rate: Fraction = Fraction(25),
    rotation: int = 0,
    audio_seconds: float | None = None,
    colour: tuple[int, int, int] | None = None,
) -> Path:
    """Write an H.264 MP4 of flat frames: `colour`, else a colour from the index; AAC audio if asked."""
    width, height = size
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=rate)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.options = {"preset": "ultrafast", "crf": "18"}
    audio = container.add_stream("aac", rate=48000, layout="stereo") if audio_seconds else None
    for index in range(frames):
        pixels = np.empty((height, width, 3), np.uint8)
        pixels[...] = colour or ((index * 40) % 256, (index * 7) % 256, 128)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = index
        frame.time_base = 1 / rate
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode(None):
        container.mux(packet)
    if audio is not None:
        _write_audio(container, audio, audio_seconds)
    container.close()
    if rotation:
        _set_display_rotation(path, rotation)
    return path


def _write_audio(container, stream, seconds: float) -> None:
    samples_total = int(seconds * 48000)
    for start in range(0, samples_total, 1024):
        count = min(1024, samples_total - start)
        t = (np.arange(start, start + count) / 48000).astype(np.float32)
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _set_display_rotation(path: Path, rotation: int) -> None:
    # The MP4 track header stores the display matrix 40 bytes after the version/flags field (version 0).
    data = bytearray(path.read_bytes())
    offset = data.index(b"tkhd") + 4
    assert data[offset] == 0, "only version 0 track headers are handled"
    a, b, c, d = _DISPLAY_MATRICES[rotation]
    struct.pack_into(">iiiii", data, offset + 40, a, b, 0, c, d)
    path.write_bytes(bytes(data))


@pytest.fixture
def work_dir(tmp_path):
    """A folder of its own for sources and results, so tests can list exactly what a run left behind."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def clip_factory(work_dir):
    def make(name: str = "source.mp4", **kwargs) -> Path:
        return write_clip(work_dir / name, **kwargs)

    return make
