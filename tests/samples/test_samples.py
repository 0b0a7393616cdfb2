"""Every shared sample video through the lanczos 2x path, checked with PyAV against the source.

The table has one row per file of the samples folder (its MANIFEST.md lists them). Accepted files must keep
every frame with its timestamp, come out at exactly twice the displayed size, and keep their audio streams
(start and length) and the subtitle streams MP4 can store. Rejected files must fail at probe with a message
that names the reason. Rows marked `full` are slow and run only with FLASHVSR_SAMPLES_FULL=1.

Set FLASHVSR_SAMPLES_DIR to the folder of sample videos; the tests skip when the folder is missing.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from django.core.management import CommandError, call_command

from gpu.params import InputError
from gpu.video import probe

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = Path(os.environ.get("FLASHVSR_SAMPLES_DIR", REPO_ROOT.parent / "shared" / "samples"))
RUN_FULL = os.environ.get("FLASHVSR_SAMPLES_FULL") == "1"

# Audio may start up to this much away from the source start: re-encoded audio gets a silent lead-in from
# time 0, and MP4 edit lists are exact only to the movie time scale.
AUDIO_START_TOLERANCE_S = 0.05
# An audio stream's length may differ by one re-encoded AAC frame plus the lead-in.
AUDIO_LENGTH_TOLERANCE_S = 0.1

pytestmark = [
    pytest.mark.samples,
    pytest.mark.skipif(
        not SAMPLES_DIR.is_dir(),
        reason=(
            f"samples folder {SAMPLES_DIR} not found; set FLASHVSR_SAMPLES_DIR to the shared samples folder"
        ),
    ),
]


@dataclass(frozen=True)
class Accepted:
    """An expected successful run: frames decoded, displayed size, audio streams, subtitle streams in MP4."""

    frames: int
    width: int
    height: int
    audio: int = 0
    mp4_subtitles: int = 0
    full: bool = False


@dataclass(frozen=True)
class Rejected:
    """An expected rejection at probe; `words` must appear in the user message."""

    words: str


SAMPLES = {
    "asl-again-h264-640x480.mkv": Accepted(77, 640, 480),
    "audio-only-mp3.mp3": Rejected("no video stream"),
    "bbb-h264-aac51-320x180-fragmented.mp4": Accepted(120, 320, 180, audio=1),
    "bbb-rot90-h264-aac51-1920x1080.mp4": Accepted(45, 1080, 1920, audio=1),
    "bbb-vp8-vorbis-1280x720-1s.webm": Accepted(24, 1280, 720, audio=1),
    "bbb-vp8-vorbis-1280x720-30s.webm": Accepted(720, 1280, 720, audio=1, full=True),
    "bbb-vp9-opus-320x180.webm": Accepted(120, 320, 180, audio=1),
    "bottle-detection-h264-640x360-40s.mp4": Accepted(1189, 640, 360, full=True),
    "car-detection-h264-aac-768x432-30s.mp4": Accepted(377, 768, 432, audio=1, full=True),
    "chaplin-h264-mp3-640x360.mp4": Accepted(241, 640, 360, audio=1),
    "echo-hereweare-vp8-vorbis-480x270-44s.webm": Accepted(836, 480, 270, audio=1, full=True),
    "exo-av1-aac-1080x720.mp4": Accepted(30, 1080, 720, audio=1),
    "exo-bbb-mpeg2-mp2-1920x1080.ts": Accepted(58, 1920, 1080, audio=1, full=True),
    "exo-bear-vp9-320x240.webm": Accepted(82, 320, 240),
    "exo-desks-h263-aac-352x288.3gp": Accepted(71, 352, 288, audio=1),
    "exo-h264-aac-320x240-60fps-15s.mp4": Accepted(932, 320, 240, audio=1),
    "exo-h264-ac3-srt-1080x720.mkv": Accepted(30, 1080, 720, audio=1, mp4_subtitles=1),
    "exo-h264-vorbis-1080x720.mkv": Accepted(30, 1080, 720, audio=1),
    "exo-hevc-854x480.ts": Accepted(30, 854, 480),
    "exo-preroll-h264-aac-640x360-5s.mp4": Accepted(125, 640, 360, audio=1),
    "exo-sample-h264-aac-1080x720.flv": Accepted(30, 1080, 720, audio=1),
    "exo-sample-h264-aac-1080x720.mp4": Accepted(30, 1080, 720, audio=1),
    "exo-sample-mpeg4-mp3-960x400.avi": Accepted(96, 960, 400, audio=1),
    "exo-testvid-h264-aac-480x360.mp4": Accepted(30, 480, 360, audio=1),
    "flashvsr-example4-h264-768x416-54s.mp4": Accepted(1634, 768, 416, full=True),
    "h264-444-320x180.mkv": Accepted(71, 320, 180),
    "h264-dts51-3xdvdsub-720x480.mkv": Accepted(207, 720, 480, audio=1, mp4_subtitles=0),
    "healthchecks-screencast-vp9-836x324.webm": Accepted(64, 836, 324),
    "interlaced-tff-h264-640x360.mp4": Accepted(126, 640, 360),
    "matrixbench-mpeg2-716x236.mpg": Accepted(25, 716, 236),
    "mb-edts-h264-aac-854x480.mp4": Accepted(225, 854, 480, audio=1),
    "mb-h264-aac-1920x1080-5s.mp4": Accepted(125, 1920, 1080, audio=1, full=True),
    "mb-h264-aac-320x240.avi": Accepted(25, 320, 240, audio=1),
    "mb-h264-aac-ass-1280x720.mkv": Accepted(250, 1280, 720, audio=1, mp4_subtitles=1, full=True),
    "mb-h264-aac-srt-ass-1280x720.mkv": Accepted(250, 1280, 720, audio=1, mp4_subtitles=2),
    "mb-h264-aac-tx3g-1280x720.mp4": Accepted(250, 1280, 720, audio=1, mp4_subtitles=1, full=True),
    "mb-h264-ac3-320x240.mov": Accepted(25, 320, 240, audio=1),
    "mb-h264-eac3-320x240.mkv": Accepted(25, 320, 240, audio=1),
    "mb-hevc-aac-1920x1080-10s.mp4": Accepted(300, 1920, 1080, audio=1, full=True),
    "mb-hevc-aac51-1920x1080.ts": Accepted(120, 1920, 1080, audio=1, full=True),
    "mb-mpeg4-aac-320x240.mov": Accepted(25, 320, 240, audio=1),
    "mb-portrait-h264-aac-1080x1920.mp4": Accepted(65, 1080, 1920, audio=1, full=True),
    "mb-square-h264-aac-720x720-60fps.ts": Accepted(298, 720, 720, audio=1, full=True),
    "moviepy-example-h264-640x480-noaudio.mp4": Accepted(50, 640, 480),
    "moviepy-example2-h264-mp3-1280x720.mp4": Accepted(48, 1280, 720, audio=1),
    "moviepy-long-h264-640x480-16s.mp4": Accepted(400, 640, 480, full=True),
    "moviepy-mask-h264-200x200-10s.mp4": Accepted(300, 200, 200),
    "neg-first-pts-h264-320x240.mp4": Accepted(15, 320, 240),
    "one-by-one-person-h264-768x432-139s.mp4": Accepted(1394, 768, 432, full=True),
    "onepiece-anime-h264-aac-640x480.mp4": Accepted(181, 640, 480, audio=1),
    "people-detection-480x270.gif": Accepted(23, 480, 270),
    "prores422proxy-interlaced-1920x1080.mov": Accepted(2, 1920, 1080),
    "smpte-bars-h264-aac-1920x1080-10s.mp4": Accepted(251, 1920, 1080, audio=1, full=True),
    "theora-512x512-1fps.ogv": Accepted(10, 512, 512),
    "vp9-10bit-426x240.webm": Accepted(72, 426, 240),
    "wmv2-wma-320x240.wmv": Accepted(474, 320, 240, audio=1),
}


def _sample_params():
    for name, expected in sorted(SAMPLES.items()):
        marks = []
        if isinstance(expected, Accepted) and expected.full:
            marks = [
                pytest.mark.samples_full,
                pytest.mark.skipif(not RUN_FULL, reason="slow sample; set FLASHVSR_SAMPLES_FULL=1"),
            ]
        yield pytest.param(name, expected, marks=marks, id=name)


def test_table_lists_every_sample():
    on_disk = {path.name for path in SAMPLES_DIR.iterdir() if path.name != "MANIFEST.md"}
    assert on_disk == set(SAMPLES)


@pytest.mark.parametrize(("name", "expected"), list(_sample_params()))
def test_sample(name, expected, tmp_path):
    source = SAMPLES_DIR / name
    if isinstance(expected, Rejected):
        with pytest.raises(InputError) as caught:
            probe(source)
        assert expected.words in caught.value.user_message
        output = tmp_path / "out.mp4"
        with pytest.raises(CommandError) as command_error:
            run_upscale(source, output)
        assert expected.words in str(command_error.value)
        assert sorted(tmp_path.glob("*out*")) == []
        return

    output = tmp_path / "out.mp4"
    result_frames, notes = run_upscale(source, output)
    info = probe(source)

    assert result_frames == expected.frames
    check_video(source, output, info, expected)
    check_audio(source, output, info, expected)
    check_subtitles(output, info, expected, notes)


def test_bitmap_subtitles_kept_in_mkv(tmp_path):
    source = SAMPLES_DIR / "h264-dts51-3xdvdsub-720x480.mkv"
    output = tmp_path / "out.mkv"
    run_upscale(source, output, container="mkv")
    out = probe(output)
    assert [stream.codec for stream in out.subtitles] == ["dvd_subtitle"] * 3
    assert [stream.codec for stream in out.audio] == ["dts"]
    assert out.frame_count == 207


def test_mov_text_and_wma_in_mkv(tmp_path):
    tx3g_output = tmp_path / "tx3g.mkv"
    run_upscale(SAMPLES_DIR / "mb-h264-aac-tx3g-1280x720.mp4", tx3g_output, container="mkv")
    assert [stream.codec for stream in probe(tx3g_output).subtitles] == ["subrip"]

    wma_output = tmp_path / "wma.mkv"
    _, notes = run_upscale(SAMPLES_DIR / "wmv2-wma-320x240.wmv", wma_output, container="mkv")
    assert [stream.codec for stream in probe(wma_output).audio] == ["flac"]
    assert any("re-encoded to FLAC" in note for note in notes)


def run_upscale(source: Path, output: Path, container: str = "mp4") -> tuple[int, list[str]]:
    """Run `manage.py upscale --variant lanczos --scale 2` and return (frames written, notes).

    The ultrafast x264 preset only trades output size for speed; every other step is the command's.
    """
    stdout = io.StringIO()
    call_command(
        "upscale", str(source), str(output),
        "--variant", "lanczos", "--scale", "2", "--preset", "ultrafast", "--container", container,
        stdout=stdout, stderr=io.StringIO(),
    )
    lines = stdout.getvalue().splitlines()
    summary = re.search(r": (\d+) frames, ", lines[0])
    assert summary, f"unexpected command output: {lines!r}"
    notes = [line.removeprefix("Note: ") for line in lines[1:] if line.startswith("Note: ")]
    return int(summary.group(1)), notes


def check_video(source: Path, output: Path, info, expected: Accepted) -> None:
    source_times, source_tick = decoded_times(source, info.video_index)
    output_times, output_tick = decoded_times(output, 0)
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        size = (stream.codec_context.width, stream.codec_context.height)
        sample_aspect = stream.sample_aspect_ratio or Fraction(1)

    assert len(output_times) == expected.frames
    assert size == (expected.width * 2, expected.height * 2)
    assert sample_aspect == Fraction(*info.sample_aspect_ratio)
    tolerance = source_tick + output_tick
    shifted = [time - info.start_time for time in sorted(source_times)]
    mismatched = [
        (index, want, got) for index, (want, got) in enumerate(zip(shifted, output_times, strict=True))
        if abs(want - got) > tolerance
    ]
    assert mismatched == []


def check_audio(source: Path, output: Path, info, expected: Accepted) -> None:
    output_info = probe(output)
    assert len(output_info.audio) == expected.audio
    for source_stream, output_stream in zip(info.audio, output_info.audio, strict=True):
        source_start, source_end = stream_span(source, source_stream)
        output_start, output_end = stream_span(output, output_stream)
        source_start -= info.start_time
        source_end -= info.start_time
        assert output_end == pytest.approx(source_end, abs=AUDIO_LENGTH_TOLERANCE_S)
        if output_stream.codec == source_stream.codec:
            assert output_start == pytest.approx(source_start, abs=AUDIO_START_TOLERANCE_S)
        else:
            # Re-encoded audio starts with silence from time 0 up to the source's first sample.
            assert output_start <= source_start + AUDIO_START_TOLERANCE_S


def check_subtitles(output: Path, info, expected: Accepted, notes: list[str]) -> None:
    with av.open(str(output)) as container:
        codecs = [stream.codec_context.name for stream in container.streams.subtitles]
    assert codecs == ["mov_text"] * expected.mp4_subtitles
    dropped = len(info.subtitles) - expected.mp4_subtitles
    assert sum("choose MKV" in note for note in notes) == dropped


def decoded_times(path: Path, stream_index: int) -> tuple[list[float], float]:
    """Return the decoded frames' presentation times in seconds, and the stream's tick in seconds."""
    with av.open(str(path), metadata_errors="replace") as container:
        stream = container.streams[stream_index]
        time_base = stream.time_base
        times = []
        for frame in container.decode(stream):
            stamp = frame.pts if frame.pts is not None else frame.dts
            times.append(float(stamp * time_base))
    return times, float(time_base)


def stream_span(path: Path, stream_info) -> tuple[float, float]:
    """Return (start, end) in seconds of an audio stream's decoded samples.

    Decoding, not packet durations: some containers (ASF) state packet durations that overlap.
    """
    start, end = None, None
    with av.open(str(path), metadata_errors="replace") as container:
        stream = container.streams[stream_info.index]
        for frame in container.decode(stream):
            begin = float(frame.pts * frame.time_base) if frame.pts is not None else end
            start = begin if start is None else start
            end = begin + frame.samples / frame.sample_rate
    assert start is not None, f"stream {stream_info.index} of {path.name} decodes to no audio"
    return start, end
