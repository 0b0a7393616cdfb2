"""Video in and out with PyAV: probe a source, decode its frames, encode and mux the result.

numpy only, no torch, so the web process can probe uploads.
"""

from gpu.video.decode import DecodedFrame, FrameReader
from gpu.video.encode import VideoWriter
from gpu.video.probe import ProbeLimits, SourceInfo, StreamInfo, probe

__all__ = ["DecodedFrame", "FrameReader", "ProbeLimits", "SourceInfo", "StreamInfo", "VideoWriter", "probe"]
