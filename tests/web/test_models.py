import pytest

from gpu.params import COLOR_FIX_METHODS, OUTPUT_CODECS, OUTPUT_CONTAINERS, SCALES, VARIANTS, UpscaleParams
from tasks_app.models import Codec, ColorFix, Container, Scale, Status, Task, Variant

pytestmark = pytest.mark.django_db


def test_choices_match_gpu_contract():
    assert tuple(Variant.values) == VARIANTS
    assert tuple(Scale.values) == SCALES
    assert tuple(ColorFix.values) == COLOR_FIX_METHODS
    assert tuple(Codec.values) == OUTPUT_CODECS
    assert tuple(Container.values) == OUTPUT_CONTAINERS


def test_lanczos_label_says_baseline():
    assert Variant.LANCZOS.label == "Lanczos baseline (no model)"


def test_params_round_trip(make_task):
    task = make_task(variant="lanczos", scale=2, crf=23, preset="fast", tiled=True)
    params = Task.objects.get(pk=task.pk).params()
    assert params == UpscaleParams(variant="lanczos", scale=2, crf=23, preset="fast", tiled=True)


def test_input_name_is_generated(make_task):
    task = make_task(original_filename="../../etc/passwd.mp4")
    assert task.input_file.name.startswith("uploads/")
    assert "passwd" not in task.input_file.name
    assert task.input_file.path.startswith(str(task.input_file.storage.location))


def test_active_and_finished_flags(make_task):
    task = make_task()
    assert task.is_active and not task.is_finished
    task.status = Status.SUCCEEDED
    assert task.is_finished and not task.is_active


def test_download_filename_uses_stem_and_scale(make_task):
    task = make_task(original_filename="Holiday clip.MOV", scale=3)
    assert task.download_filename == "Holiday clip_x3.mp4"
