"""FrameReader and VideoWriter together: decode a generated clip, scale it 2x, encode it, check the output."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import av
import numpy as np
import pytest

from gpu.params import DecodeError, OutputError, UpscaleParams
from gpu.video import FrameReader, VideoWriter, probe
from tests.video.clips import make_clip, make_raw_h264, read_frame_index


def upscale_2x(source, output, **param_overrides):
    """Run the lanczos path at 2x and return (source info, source pts in seconds, notes)."""
    info = probe(source)
    params = UpscaleParams(variant="lanczos", scale=2, preset="ultrafast", **param_overrides)
    pix_fmt = "rgb48le" if params.codec == "hevc10" else "rgb24"
    source_times = []
    with (
        FrameReader(source, info, width=info.width * 2, height=info.height * 2, pix_fmt=pix_fmt) as reader,
        VideoWriter(output, info, info.width * 2, info.height * 2, params) as writer,
    ):
        for decoded in reader:
            source_times.append(float(decoded.pts * decoded.time_base) - info.start_time)
            writer.write(decoded.frame, decoded.pts)
        notes = writer.finish()
    return info, source_times, notes


def output_frames(path):
    """Return (indices read from the pixels, pts in seconds, first frame) of the output's video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        indices, times, first = [], [], None
        for frame in container.decode(stream):
            first = first or frame
            indices.append(read_frame_index(frame.to_ndarray(format="rgb24")))
            times.append(float(frame.pts * stream.time_base))
    return indices, times, first


@pytest.mark.parametrize("frames", [1, 2, 20, 21, 25])
def test_roundtrip_keeps_every_frame(tmp_path, frames):
    source = make_clip(tmp_path / "in.mp4", frames=frames, size=(64, 48))
    _, source_times, _ = upscale_2x(source, tmp_path / "out.mp4")
    indices, times, first = output_frames(tmp_path / "out.mp4")
    assert indices == list(range(frames))
    assert times == pytest.approx(source_times, abs=1e-4)
    assert (first.width, first.height) == (128, 96)


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(24000, 1001)])
def test_roundtrip_keeps_ntsc_rates(tmp_path, rate):
    source = make_clip(tmp_path / "in.mp4", frames=20, fps=rate)
    _, source_times, _ = upscale_2x(source, tmp_path / "out.mp4")
    _, times, _ = output_frames(tmp_path / "out.mp4")
    assert times == pytest.approx(source_times, abs=1e-4)
    assert Fraction(*probe(tmp_path / "out.mp4").frame_rate) == rate


def test_roundtrip_keeps_variable_frame_rate(tmp_path):
    pts = [0, 40, 80, 200, 240, 400, 440, 480, 700, 740, 760, 1000]
    source = make_clip(tmp_path / "in.mkv", frames=len(pts), vfr_pts=pts)
    upscale_2x(source, tmp_path / "out.mp4")
    _, times, _ = output_frames(tmp_path / "out.mp4")
    assert times == pytest.approx([p / 1000 for p in pts], abs=1e-4)


def test_roundtrip_mkv_container(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=21)
    upscale_2x(source, tmp_path / "out.mkv", container="mkv")
    info = probe(tmp_path / "out.mkv")
    assert info.container == "matroska,webm"
    assert info.frame_count == 21


def test_rotation_is_applied_to_pixels(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=3, size=(64, 48), rotation=90)
    upscale_2x(source, tmp_path / "out.mp4")
    info = probe(tmp_path / "out.mp4")
    assert info.rotation == 0
    assert (info.width, info.height) == (96, 128)
    with av.open(str(tmp_path / "out.mp4")) as container:
        pictures = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    # The bars run across the coded width; turning the displayed picture back 90 degrees recovers them.
    assert [read_frame_index(np.rot90(picture, 1)) for picture in pictures] == [0, 1, 2]


def test_size_change_scales_to_first_size(tmp_path):
    source = make_raw_h264(tmp_path / "in.h264", [((64, 48), 5), ((96, 64), 5)])
    info = probe(source)
    assert (info.width, info.height, info.frame_count) == (64, 48, 10)
    assert Fraction(*info.frame_rate) == 25
    upscale_2x(source, tmp_path / "out.mp4")
    indices, times, first = output_frames(tmp_path / "out.mp4")
    assert indices == list(range(10))
    assert times == pytest.approx([index / 25 for index in range(10)], abs=1e-4)
    assert (first.width, first.height) == (128, 96)


def test_interlaced_source_keeps_frames(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=6, interlaced=True)
    info, source_times, _ = upscale_2x(source, tmp_path / "out.mp4")
    assert info.interlaced
    indices, times, _ = output_frames(tmp_path / "out.mp4")
    assert indices == list(range(6))
    assert times == pytest.approx(source_times, abs=1e-4)


def test_late_audio_keeps_its_start(tmp_path):
    source = make_clip(tmp_path / "in.mkv", frames=25, audio=[("aac", 48000, 1.0, 0.5)])
    upscale_2x(source, tmp_path / "out.mp4")
    assert tone_onset(tmp_path / "out.mp4") == pytest.approx(tone_onset(source), abs=0.002)
    assert tone_onset(tmp_path / "out.mp4") == pytest.approx(0.5, abs=0.03)


def test_reencoded_late_audio_keeps_its_start(tmp_path):
    source = make_clip(tmp_path / "in.mkv", frames=25, audio=[("mp2", 48000, 1.0, 0.5)])
    _, _, notes = upscale_2x(source, tmp_path / "out.mp4")
    out = probe(tmp_path / "out.mp4")
    assert out.audio[0].codec == "aac"
    assert any("re-encoded to AAC" in note for note in notes)
    assert tone_onset(tmp_path / "out.mp4") == pytest.approx(tone_onset(source), abs=0.002)


def test_audio_longer_than_video_is_kept(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=10, audio=[("aac", 44100, 3.0, 0.0)])
    upscale_2x(source, tmp_path / "out.mp4")
    out = probe(tmp_path / "out.mp4")
    assert out.audio[0].duration == pytest.approx(3.0, abs=0.05)
    assert out.frame_count == 10


def test_every_audio_stream_is_copied(tmp_path):
    audio = [("aac", 48000, 1.0, 0.0), ("ac3", 48000, 1.0, 0.0), ("flac", 44100, 1.0, 0.0)]
    source = make_clip(tmp_path / "in.mkv", frames=25, audio=audio)
    _, _, notes = upscale_2x(source, tmp_path / "out.mp4")
    assert [stream.codec for stream in probe(tmp_path / "out.mp4").audio] == ["aac", "ac3", "flac"]
    assert notes == []


def test_text_subtitles_become_mov_text_in_mp4(tmp_path):
    cues = [(0.1, 0.4, "first"), (0.5, 0.9, "second")]
    source = make_clip(tmp_path / "in.mkv", frames=25, subtitles=[("srt", cues), ("ass", cues)])
    upscale_2x(source, tmp_path / "out.mp4")
    subtitles = probe(tmp_path / "out.mp4").subtitles
    assert [stream.codec for stream in subtitles] == ["mov_text", "mov_text"]
    assert [stream.language for stream in subtitles] == ["eng", "eng"]
    assert subtitle_texts(tmp_path / "out.mp4") == ["first", "second"]


def test_text_subtitles_are_copied_in_mkv(tmp_path):
    source = make_clip(tmp_path / "in.mkv", frames=25, subtitles=[("ass", [(0.2, 0.6, "hello")])])
    upscale_2x(source, tmp_path / "out.mkv", container="mkv")
    assert [stream.codec for stream in probe(tmp_path / "out.mkv").subtitles] == ["ass"]


def test_full_range_source_keeps_black_and_white(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=2, pix_fmt="yuvj420p", color_range="pc")
    upscale_2x(source, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.color_range == 1  # limited ("tv") range, tagged
        picture = next(container.decode(stream)).to_ndarray(format="rgb24")
    # Frame 0 is all black; a range mix-up lifts black to about 16 or crushes it below 0.
    assert picture.mean() < 4


def test_output_is_tagged_bt709(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=2, color_space="bt709", color_range="tv")
    upscale_2x(source, tmp_path / "out.mp4")
    out = probe(tmp_path / "out.mp4")
    assert (out.color_space, out.color_primaries, out.color_trc, out.color_range) == (
        "bt709", "bt709", "bt709", "tv",
    )


def test_hevc10_output_is_ten_bit(tmp_path):
    source = make_clip(tmp_path / "in.mkv", frames=3, pix_fmt="yuv420p10le", codec="libx265")
    upscale_2x(source, tmp_path / "out.mp4", codec="hevc10")
    out = probe(tmp_path / "out.mp4")
    assert (out.codec, out.pix_fmt, out.bit_depth) == ("hevc", "yuv420p10le", 10)
    indices, _, _ = output_frames(tmp_path / "out.mp4")
    assert indices == [0, 1, 2]


HDR10_PARAMS = (
    "hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:"
    "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"
)


def test_hevc10_keeps_hdr10_metadata(tmp_path):
    source = make_clip(tmp_path / "in.mkv", frames=3, pix_fmt="yuv420p10le", codec="libx265",
                       x265_params=HDR10_PARAMS)
    info = probe(source)
    assert info.mastering_display == "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
    assert info.content_light_level == "1000,400"

    _, _, notes = upscale_2x(source, tmp_path / "out.mp4", codec="hevc10")
    out = probe(tmp_path / "out.mp4")
    assert out.mastering_display == info.mastering_display
    assert out.content_light_level == info.content_light_level
    assert (out.color_trc, out.color_primaries, out.color_space) == ("smpte2084", "bt2020", "bt2020nc")
    assert not any("tone mapping" in note for note in notes)


def test_hdr_source_to_8bit_adds_note(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=2)
    info = dataclasses.replace(probe(source), color_trc="smpte2084", color_primaries="bt2020")
    writer = VideoWriter(tmp_path / "out.mp4", info, 128, 96, UpscaleParams(variant="lanczos", scale=2))
    writer.abort()
    assert any("no tone mapping was done" in note for note in writer.notes)


def test_ndarray_frames_are_accepted(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=3)
    info = probe(source)
    params = UpscaleParams(variant="lanczos", scale=2, preset="ultrafast")
    with VideoWriter(tmp_path / "out.mp4", info, 128, 96, params) as writer:
        for index in range(3):
            picture = np.zeros((96, 128, 3), dtype=np.uint8)
            picture[:, : 16 * (index + 1)] = 255
            writer.write(picture, index)
        writer.finish()
    assert probe(tmp_path / "out.mp4").frame_count == 3


def test_abort_leaves_no_files(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=3)
    info = probe(source)
    writer = VideoWriter(tmp_path / "out.mp4", info, 128, 96, UpscaleParams(variant="lanczos", scale=2))
    writer.write(np.zeros((96, 128, 3), dtype=np.uint8), 0)
    writer.abort()
    writer.abort()
    assert files_in(tmp_path) == ["in.mp4"]


def test_failed_finish_leaves_no_files(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=3)
    info = probe(source)
    writer = VideoWriter(tmp_path / "out.mp4", info, 128, 96, UpscaleParams(variant="lanczos", scale=2),
                         source_path=tmp_path / "missing.mp4")
    writer.write(np.zeros((96, 128, 3), dtype=np.uint8), 0)
    with pytest.raises(OutputError):
        writer.finish()
    assert files_in(tmp_path) == ["in.mp4"]


def test_writer_rejects_decreasing_pts(tmp_path):
    info = probe(make_clip(tmp_path / "in.mp4", frames=2))
    params = UpscaleParams(variant="lanczos", scale=2)
    with VideoWriter(tmp_path / "out.mp4", info, 128, 96, params) as writer:
        writer.write(np.zeros((96, 128, 3), dtype=np.uint8), 5)
        with pytest.raises(ValueError, match="must increase"):
            writer.write(np.zeros((96, 128, 3), dtype=np.uint8), 5)
        writer.abort()


def test_damaged_stream_raises_decode_error(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=20, pattern="noise")
    data = bytearray(source.read_bytes())
    data[len(data) // 2 : len(data) * 7 // 10] = b"\xff" * (len(data) * 7 // 10 - len(data) // 2)
    source.write_bytes(bytes(data))
    info = probe(source)
    with pytest.raises(DecodeError) as caught, FrameReader(source, info) as reader:
        for _ in reader:
            pass
    assert 0 < caught.value.frame_index < 20
    assert "damaged" in caught.value.user_message


def files_in(folder) -> list[str]:
    """Return the file names in `folder`, without the media folder that the shared conftest creates there."""
    return sorted(path.name for path in folder.iterdir() if path.is_file())


def tone_onset(path) -> float:
    """Return the time in seconds of the first sample above 1% of full scale in the first audio stream."""
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            samples = samples[0] if samples.ndim == 2 else samples
            if samples.dtype.kind == "i":
                samples = samples / np.iinfo(samples.dtype).max
            loud = np.nonzero(np.abs(samples) > 0.01)[0]
            if len(loud):
                return float(frame.pts * frame.time_base) + loud[0] / frame.sample_rate
    raise AssertionError(f"no audible sample in {path}")


def subtitle_texts(path) -> list[str]:
    texts = []
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            for subtitle_set in [stream.codec_context.decode2(packet)] if packet.size else []:
                if subtitle_set is None:
                    continue
                texts.extend(rect.ass.decode().split(",", 8)[-1] for rect in subtitle_set.rects)
    return [text for text in texts if text]
