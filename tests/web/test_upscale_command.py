from io import StringIO

import av
import pytest
from django.core.management import CommandError, call_command

from .clips import write_audio_only, write_video


def run_command(*args):
    out, err = StringIO(), StringIO()
    call_command("upscale", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_upscale_command_writes_result(tmp_path):
    source = write_video(tmp_path / "in.mp4", frames=7, width=64, height=48, fps=10)
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
    audio = write_audio_only(tmp_path / "song.m4a")
    with pytest.raises(CommandError, match="no video stream"):
        run_command(audio, tmp_path / "out.mp4", "--variant", "lanczos")
    assert not (tmp_path / "out.mp4").exists()


def test_upscale_command_keeps_existing_output(tmp_path):
    source = write_video(tmp_path / "in.mp4", frames=3)
    output = tmp_path / "out.mp4"
    output.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="--overwrite"):
        run_command(source, output, "--variant", "lanczos")
    assert output.read_bytes() == b"keep me"


def test_upscale_command_rejects_invalid_crf(tmp_path):
    source = write_video(tmp_path / "in.mp4", frames=3)
    with pytest.raises(CommandError, match="crf must be between 0 and 51"):
        run_command(source, tmp_path / "out.mp4", "--variant", "lanczos", "--crf", "80")
