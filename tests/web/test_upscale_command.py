from io import StringIO

import av
import pytest
from django.core.management import CommandError, call_command

from tests.video.clips import make_audio_file, make_clip


def run_command(*args):
    out, err = StringIO(), StringIO()
    call_command("upscale", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_upscale_command_writes_result(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=7, fps=10)
    output = tmp_path / "out.mp4"

    out, err = run_command(
        source, output, "--variant", "lanczos", "--scale", "3", "--crf", "23", "--preset", "fast"
    )

    with av.open(str(output)) as result:
        frames = list(result.decode(video=0))
    assert len(frames) == 7
    assert (frames[0].width, frames[0].height) == (192, 144)
    assert "7 frames, 192x144" in out
    assert "7/7 frames" in err
    assert "100.0%" in err


def test_upscale_command_rejects_missing_input(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run_command(tmp_path / "missing.mp4", tmp_path / "out.mp4", "--variant", "lanczos")


def test_upscale_command_rejects_audio_only(tmp_path):
    audio = make_audio_file(tmp_path / "song.m4a")
    with pytest.raises(CommandError, match="no video stream"):
        run_command(audio, tmp_path / "out.mp4", "--variant", "lanczos")
    assert not (tmp_path / "out.mp4").exists()


def test_upscale_command_keeps_existing_output(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=3, fps=10)
    output = tmp_path / "out.mp4"
    output.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="--overwrite"):
        run_command(source, output, "--variant", "lanczos")
    assert output.read_bytes() == b"keep me"


def test_upscale_command_rejects_invalid_crf(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=3, fps=10)
    with pytest.raises(CommandError, match="crf must be between 0 and 51"):
        run_command(source, tmp_path / "out.mp4", "--variant", "lanczos", "--crf", "80")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--sparse-ratio", "9", "sparse_ratio must be between 0.5 and 4.0, got 9.0"),
        ("--kv-ratio", "0.5", "kv_ratio must be between 1.0 and 8.0, got 0.5"),
        ("--local-range", "40", "local_range must be between 1 and 31, got 40"),
        ("--seed", "-1", "seed must be between 0 and 4294967295, got -1"),
    ],
)
def test_upscale_command_rejects_out_of_range_value(tmp_path, option, value, message):
    source = make_clip(tmp_path / "in.mp4", frames=3, fps=10)
    with pytest.raises(CommandError, match=message):
        run_command(source, tmp_path / "out.mp4", "--variant", "lanczos", option, value)
    assert not (tmp_path / "out.mp4").exists()
