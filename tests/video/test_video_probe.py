"""probe(): facts read from generated clips, and the messages of rejected files."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from gpu.params import InputError
from gpu.video import ProbeLimits, SourceInfo, probe
from tests.video.clips import make_audio_file, make_clip, truncate


def test_probe_reads_size_rate_and_count(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", frames=21, size=(64, 48), fps=Fraction(30000, 1001))
    info = probe(clip)
    assert (info.width, info.height) == (64, 48)
    assert info.frame_rate == (30000, 1001)
    assert info.frame_count == 21
    assert info.frame_count_exact
    assert info.codec == "h264"
    assert not info.is_vfr
    assert info.rotation == 0


def test_probe_23976_rate_is_exact_fraction(tmp_path):
    info = probe(make_clip(tmp_path / "a.mkv", frames=20, fps=Fraction(24000, 1001)))
    assert Fraction(*info.frame_rate) == Fraction(24000, 1001)


def test_probe_rotated_clip_reports_displayed_size(tmp_path):
    info = probe(make_clip(tmp_path / "r.mp4", frames=2, size=(64, 48), rotation=90))
    assert info.rotation == 90
    assert (info.width, info.height) == (48, 64)
    assert (info.coded_width, info.coded_height) == (64, 48)


def test_probe_detects_variable_frame_rate(tmp_path):
    pts = [0, 40, 80, 200, 240, 400, 440, 480, 700, 740]
    info = probe(make_clip(tmp_path / "v.mkv", frames=10, vfr_pts=pts))
    assert info.is_vfr
    assert info.frame_count == 10


def test_probe_lists_audio_and_subtitle_streams(tmp_path):
    clip = make_clip(
        tmp_path / "s.mkv", frames=5,
        audio=[("aac", 48000, 1.0, 0.5), ("flac", 44100, 2.0, 0.0)],
        subtitles=[("srt", [(0.0, 0.1, "one")]), ("ass", [(0.05, 0.15, "two")])],
    )
    info = probe(clip)
    assert [stream.codec for stream in info.audio] == ["aac", "flac"]
    assert [stream.codec for stream in info.subtitles] == ["subrip", "ass"]
    assert info.audio[0].start_time == pytest.approx(0.5, abs=0.03)
    assert info.audio[1].sample_rate == 44100
    assert info.subtitles[0].language == "eng"
    assert not info.subtitles[0].bitmap


def test_probe_full_range_clip(tmp_path):
    info = probe(make_clip(tmp_path / "j.mp4", frames=2, pix_fmt="yuvj420p", color_range="pc"))
    assert info.color_range == "pc"
    assert info.bit_depth == 8


def test_probe_ten_bit_clip(tmp_path):
    info = probe(make_clip(tmp_path / "t.mkv", frames=2, pix_fmt="yuv420p10le", codec="libx265"))
    assert info.bit_depth == 10
    assert info.codec == "hevc"


def test_source_info_round_trips_json(tmp_path):
    info = probe(make_clip(tmp_path / "a.mkv", frames=3, audio=[("aac", 48000, 0.5, 0.0)]))
    restored = SourceInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert restored == info


def test_probe_rejects_empty_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as caught:
        probe(empty)
    assert "empty" in caught.value.user_message


def test_probe_rejects_renamed_text_file(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a shopping list, not a video\n" * 50)
    with pytest.raises(InputError) as caught:
        probe(fake)
    assert "not a video file" in caught.value.user_message


def test_probe_rejects_audio_only(tmp_path):
    path = make_audio_file(tmp_path / "sound.m4a")
    with pytest.raises(InputError) as caught:
        probe(path)
    assert "no video stream" in caught.value.user_message


def test_probe_rejects_truncated_header(tmp_path):
    clip = make_clip(tmp_path / "cut.mkv", frames=20, pattern="noise")
    truncate(clip, 0.01)
    with pytest.raises(InputError) as caught:
        probe(clip)
    message = caught.value.user_message
    assert "cut off" in message or "not a video file" in message or "could not be decoded" in message


def test_probe_probes_by_content_not_extension(tmp_path):
    clip = make_clip(tmp_path / "real.mkv", frames=3)
    renamed = clip.rename(tmp_path / "real.txt")
    assert probe(renamed).container == "matroska,webm"


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        (ProbeLimits(max_bytes=100), "over the limit"),
        (ProbeLimits(max_duration_s=0.5), "long, over the limit"),
        (ProbeLimits(max_pixels=1000), "source pixels"),
    ],
)
def test_probe_enforces_limits(tmp_path, limits, words):
    clip = make_clip(tmp_path / "a.mp4", frames=25, size=(64, 48))
    with pytest.raises(InputError) as caught:
        probe(clip, limits=limits)
    assert words in caught.value.user_message
