"""Still images for the before/after comparison on a finished task's page.

"before" is frame k of the source scaled with Lanczos resampling to the result's size, and "after" is
frame k of the result. Both are decoded with gpu.video (PyAV only, no torch) on first request and kept under
previews/ as `<task id>.before.jpg` and `<task id>.after.jpg`, so deleting the task removes them with its
other previews.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings
from PIL import Image

from gpu.params import InputError, UpscaleError
from gpu.video.decode import FrameReader
from gpu.video.probe import probe

from .models import Task

logger = logging.getLogger(__name__)

KINDS = ("before", "after")
JPEG_QUALITY = 90
# Decoding runs from the first frame, so the compared frame is the middle one but at most this far in: a page
# request then decodes a bounded number of frames even for a long video.
MAX_FRAME_INDEX = 240


class ComparisonUnavailable(Exception):
    """The comparison image cannot be made: the task has no result, or a video could not be decoded."""


def image_path(task: Task, kind: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "previews" / f"{task.pk}.{kind}.jpg"


def frame_index(frame_count: int) -> int:
    """Return the index of the compared frame for a video of `frame_count` frames."""
    return max(0, min(frame_count // 2, MAX_FRAME_INDEX))


def ensure_image(task: Task, kind: str) -> Path:
    """Return the path of the task's `kind` comparison image, decoding and saving it first when it is missing.

    Raises ComparisonUnavailable when the task has no result file or a video cannot be decoded.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = image_path(task, kind)
    if path.is_file():
        return path
    if not task.result_file or not os.path.isfile(task.result_file.path):
        raise ComparisonUnavailable(f"task {task.pk} has no result file")
    try:
        picture = _decode_picture(task, kind)
    except (InputError, UpscaleError, OSError, ValueError) as error:
        logger.warning("Comparison image %s of task %s failed: %s", kind, task.pk, error)
        raise ComparisonUnavailable(str(error)) from error
    _save_atomically(picture, path)
    logger.info("Wrote comparison image %s for task %s", path.name, task.pk)
    return path


def _decode_picture(task: Task, kind: str) -> Image.Image:
    result_info = probe(task.result_file.path)
    index = frame_index(result_info.frame_count)
    if kind == "after":
        return _frame_at(task.result_file.path, result_info, index)
    source_info = probe(task.input_file.path)
    picture = _frame_at(task.input_file.path, source_info, index)
    return picture.resize((result_info.width, result_info.height), Image.Resampling.LANCZOS)


def _frame_at(path: str, info, index: int) -> Image.Image:
    """Decode frame `index` of `path` (display-oriented RGB), or the last frame when the video is shorter."""
    picture = None
    with FrameReader(path, info, pix_fmt="rgb24") as reader:
        for decoded in reader:
            picture = decoded.frame.to_image()
            if decoded.index >= index:
                break
    if picture is None:
        raise ValueError(f"{path} has no decodable video frame")
    return picture


def _save_atomically(picture: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".preview-", suffix=".jpg")
    try:
        with os.fdopen(handle, "wb") as stream:
            picture.convert("RGB").save(stream, format="JPEG", quality=JPEG_QUALITY)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
