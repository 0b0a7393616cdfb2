"""Frame, padding and tile plans: every length and size maps onto a valid model input and back."""

import pytest

from gpu.flashvsr.pipeline import check_frame_count, output_frame_count, padded_input_frames
from gpu.geometry import Tile, feather_ramp, plan_frames, plan_spatial, plan_tiles


def test_frame_plan_is_valid_model_input():
    for frames in range(1, 300):
        plan = plan_frames(frames)

        check_frame_count(plan.model_frames)
        assert plan.model_frames == padded_input_frames(frames), frames
        assert output_frame_count(plan.model_frames) >= frames
        assert plan.padding_frames == plan.model_frames - frames


@pytest.mark.parametrize(
    ("frames", "model_frames"),
    [(1, 25), (2, 25), (20, 25), (21, 25), (22, 33), (25, 33), (29, 33), (30, 41), (100, 105)],
)
def test_frame_plan_smallest_length(frames, model_frames):
    assert plan_frames(frames).model_frames == model_frames


def test_frame_plan_rejects_empty_video():
    with pytest.raises(ValueError, match="at least 1 frame"):
        plan_frames(0)


@pytest.mark.parametrize(
    ("width", "height", "scale", "padded"),
    [
        (32, 24, 4, (128, 128)),
        (1920, 1080, 2, (3840, 2176)),
        (352, 192, 4, (1408, 768)),
        (1, 1, 3, (128, 128)),
    ],
)
def test_spatial_plan_pads_to_grid(width, height, scale, padded):
    plan = plan_spatial(width, height, scale)

    assert (plan.width, plan.height) == (width * scale, height * scale)
    assert (plan.padded_width, plan.padded_height) == padded
    assert plan.pad_right == padded[0] - width * scale
    assert plan.pad_bottom == padded[1] - height * scale


def test_tiles_cover_frame_with_overlap():
    tiles = plan_tiles(1408, 768, 512, 128)

    covered = [[0] * 1408 for _ in range(768)]
    for tile in tiles:
        assert tile.left % 128 == 0
        assert tile.top % 128 == 0
        assert tile.width <= 512
        assert tile.height <= 512
        for row in range(tile.top, tile.bottom, 64):
            for column in range(tile.left, tile.right, 64):
                covered[row][column] += 1
    assert all(count >= 1 for row in covered[::64] for count in row[::64])
    columns = sorted({(tile.left, tile.right) for tile in tiles})
    for (_, previous_right), (next_left, _) in zip(columns, columns[1:], strict=False):
        assert previous_right - next_left >= 128


def test_single_tile_when_frame_fits():
    assert plan_tiles(256, 128, 512, 128) == [Tile(0, 0, 256, 128)]


def test_tile_plan_rejects_off_grid_sizes():
    with pytest.raises(ValueError, match="multiple of 128"):
        plan_tiles(512, 512, 500, 128)
    with pytest.raises(ValueError, match="smaller than tile_size"):
        plan_tiles(512, 512, 256, 256)


def test_feather_ramp_rises_and_falls():
    ramp = feather_ramp(8, 4, 2)

    assert ramp[0] == pytest.approx(0.125)
    assert ramp[3] == pytest.approx(0.875)
    assert ramp[4] == 1.0
    assert ramp[-1] == pytest.approx(0.25)
    assert min(ramp) > 0
