"""Tests for the overlapping model: extraction, agreement, rendering and input validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.reference.naive_wfc import (
    is_valid_tiling,
    naive_allowed,
    naive_patterns,
    solve_reference,
    windows_are_patterns,
)
from tests.samples import OVERLAPPING
from worldgen.engine.patterns import (
    UNKNOWN_RGBA,
    OverlappingModel,
    colour_indices,
    extract_patterns,
    load_sample,
    render_overlapping,
    wave_shape,
)
from worldgen.engine.rules import OPPOSITE, RuleTable
from worldgen.errors import InputError, SampleError

SAMPLES = OVERLAPPING

# A 3x2 two-colour sample used by the hand-worked examples below.
#   0 0 1
#   0 1 1
S = np.array([[0, 0, 1], [0, 1, 1]], dtype=np.uint8)
PALETTE = np.array([[0, 0, 0, 255], [255, 255, 255, 255]], dtype=np.uint8)

# Its five 2x2 windows with symmetry 1, periodic input, in scan order (y outer, x inner):
P0 = [[0, 0], [0, 1]]  # (0, 0)
P1 = [[0, 1], [1, 1]]  # (1, 0)
P2 = [[1, 0], [1, 0]]  # (2, 0), wrapping; met again at (2, 1)
P3 = [[0, 1], [0, 0]]  # (0, 1), wrapping
P4 = [[1, 1], [0, 1]]  # (1, 1), wrapping


def model_of(
    sample: npt.NDArray[np.uint8] = S, N: int = 2, symmetry: int = 1, periodic: bool = True
) -> OverlappingModel:
    palette = np.zeros((int(sample.max()) + 1, 4), dtype=np.uint8)
    palette[:, 0] = np.arange(palette.shape[0])
    palette[:, 3] = 255
    return extract_patterns(sample, palette, N, symmetry=symmetry, periodic_input=periodic)


def as_lists(model: OverlappingModel) -> tuple[list[list[list[int]]], list[float]]:
    return model.patterns.tolist(), model.weights.tolist()


# --- extraction, worked by hand -------------------------------------------------------------


def test_symmetry_1_periodic_lists_windows_in_scan_order() -> None:
    patterns, weights = as_lists(model_of(symmetry=1))
    assert patterns == [P0, P1, P2, P3, P4]
    assert weights == [1, 1, 2, 1, 1]


def test_symmetry_1_bounded_input_only_takes_windows_that_fit() -> None:
    patterns, weights = as_lists(model_of(symmetry=1, periodic=False))
    assert patterns == [P0, P1]
    assert weights == [1, 1]


def test_symmetry_2_adds_each_window_then_its_mirror() -> None:
    patterns, weights = as_lists(model_of(symmetry=2))
    assert patterns == [
        P0, [[0, 0], [1, 0]],
        P1, [[1, 0], [1, 1]],
        P2, [[0, 1], [0, 1]],
        P3, [[1, 0], [0, 0]],
        P4, [[1, 1], [1, 0]],
    ]  # fmt: skip
    assert weights == [1, 1, 1, 1, 2, 2, 1, 1, 1, 1]


def test_symmetry_4_takes_window_mirror_rotation_and_its_mirror() -> None:
    patterns, weights = as_lists(model_of(symmetry=4))
    assert patterns == [
        [[0, 0], [0, 1]], [[0, 0], [1, 0]], [[0, 1], [0, 0]], [[1, 0], [0, 0]],
        [[0, 1], [1, 1]], [[1, 0], [1, 1]], [[1, 1], [0, 1]], [[1, 1], [1, 0]],
        [[1, 0], [1, 0]], [[0, 1], [0, 1]], [[0, 0], [1, 1]],
    ]  # fmt: skip
    assert weights == [1, 1, 3, 3, 1, 1, 3, 3, 2, 2, 4]


def test_symmetry_8_orders_patterns_by_first_variant_met() -> None:
    patterns, weights = as_lists(model_of(symmetry=8))
    # (0, 0) brings the one-dark-pixel orbit in the order p0, p1 (mirror), p2 (rotation), p3;
    # (1, 0) the one-light-pixel orbit; (2, 0) the half-and-half orbit, where the rotation
    # [[0,0],[1,1]] comes before [[1,1],[0,0]] (first met as p6).
    assert patterns == [
        [[0, 0], [0, 1]], [[0, 0], [1, 0]], [[0, 1], [0, 0]], [[1, 0], [0, 0]],
        [[0, 1], [1, 1]], [[1, 0], [1, 1]], [[1, 1], [0, 1]], [[1, 1], [1, 0]],
        [[1, 0], [1, 0]], [[0, 1], [0, 1]], [[0, 0], [1, 1]], [[1, 1], [0, 0]],
    ]  # fmt: skip
    assert weights == [4] * 12
    assert model_of(symmetry=8).ground_pattern == 11


def test_rotation_is_counter_clockwise() -> None:
    # A single window: symmetry 4 lists p0, mirror, rotation, mirror of the rotation.
    sample = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]], dtype=np.uint8)
    patterns = model_of(sample, N=3, symmetry=4, periodic=False).patterns
    assert patterns[0].tolist() == sample.tolist()
    assert patterns[1].tolist() == [[2, 1, 0], [5, 4, 3], [8, 7, 6]]
    assert patterns[2].tolist() == [[2, 5, 8], [1, 4, 7], [0, 3, 6]]
    assert patterns[3].tolist() == [[8, 5, 2], [7, 4, 1], [6, 3, 0]]


def test_periodic_input_wraps_a_sample_smaller_than_n() -> None:
    sample = np.array([[0, 1]], dtype=np.uint8)
    model = model_of(sample, N=3, symmetry=1)
    assert model.patterns.tolist() == [[[0, 1, 0]] * 3, [[1, 0, 1]] * 3]
    assert model.weights.tolist() == [1, 1]


def test_model_arrays_are_read_only_and_typed() -> None:
    model = model_of(symmetry=8)
    assert model.patterns.dtype == np.uint8
    assert model.weights.dtype == np.float64
    assert model.allowed.dtype == np.bool_
    assert model.allowed.shape == (4, 12, 12)
    with pytest.raises(ValueError, match="read-only"):
        model.weights[0] = 5
    rules = model.rules()
    assert isinstance(rules, RuleTable)
    assert rules.validated().size == 12


# --- agreement ------------------------------------------------------------------------------


def test_agreement_entries_worked_by_hand() -> None:
    a = model_of(symmetry=1).allowed  # patterns P0..P4
    # Right (d=2): a's right column must equal b's left column.
    assert a[2, 0, 1]  # P0 | P1 as in the sample: (0,1) == (0,1)
    assert not a[2, 0, 2]  # P0's (0,1) vs P2's (1,1)
    assert a[2, 1, 2]  # (1,1) == (1,1)
    assert a[2, 2, 0]  # the wrap in the sample: (0,0) == (0,0)
    assert not a[2, 2, 2]  # P2 beside itself would need (0,0) == (1,1)
    # Down (d=1): a's bottom row must equal b's top row.
    assert a[1, 0, 3]
    assert not a[1, 0, 4]
    # Up (d=3) and left (d=0) are the same pairs seen from the other side.
    assert a[3, 3, 0]
    assert a[0, 1, 0]
    assert not a[0, 2, 0]


def test_agreement_is_symmetric_under_direction_reversal() -> None:
    a = model_of(symmetry=8).allowed
    for d in range(4):
        assert np.array_equal(a[d], a[OPPOSITE[d]].T)


def test_agreement_matches_brute_force_on_maze() -> None:
    sample, palette = load_sample(SAMPLES / "maze.png")
    model = extract_patterns(sample, palette, 3)
    patterns = [tuple(tuple(row) for row in p) for p in model.patterns.tolist()]
    assert model.allowed.tolist() == naive_allowed(patterns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    width=st.integers(1, 6),
    height=st.integers(1, 6),
    colours=st.integers(1, 3),
    N=st.integers(2, 3),
    symmetry=st.sampled_from([1, 2, 4, 8]),
    periodic=st.booleans(),
)
def test_extraction_matches_the_naive_scan(
    data: st.DataObject,
    width: int,
    height: int,
    colours: int,
    N: int,
    symmetry: int,
    periodic: bool,
) -> None:
    cells = data.draw(
        st.lists(st.integers(0, colours - 1), min_size=width * height, max_size=width * height)
    )
    sample = np.array(cells, dtype=np.uint8).reshape(height, width)
    palette = np.zeros((colours, 4), dtype=np.uint8)
    palette[:, 0] = np.arange(colours)
    if not periodic and (width < N or height < N):
        with pytest.raises(SampleError):
            extract_patterns(sample, palette, N, symmetry, periodic)
        return
    model = extract_patterns(sample, palette, N, symmetry, periodic)
    patterns, counts = naive_patterns(sample, N, symmetry, periodic)
    assert [tuple(tuple(r) for r in p) for p in model.patterns.tolist()] == patterns
    assert model.weights.tolist() == counts
    assert model.allowed.tolist() == naive_allowed(patterns)


# --- the shared samples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("islands", 205),
        ("rivers", 194),
        ("maze", 85),
        ("dungeon", 200),
        ("town", 737),
        ("garden", 201),
    ],
)
def test_pattern_counts_of_shared_samples(name: str, count: int) -> None:
    sample, palette = load_sample(SAMPLES / f"{name}.png")
    model = extract_patterns(sample, palette, 3, symmetry=8, periodic_input=True)
    assert model.size == count
    h, w = sample.shape
    assert model.weights.sum() == 8 * w * h
    patterns, counts = naive_patterns(sample, 3, 8, True)
    assert model.weights.tolist() == counts
    assert [tuple(tuple(r) for r in p) for p in model.patterns.tolist()] == patterns


def test_garden_ground_pattern_is_dirt_under_sky() -> None:
    sample, palette = load_sample(SAMPLES / "garden.png")
    model = extract_patterns(sample, palette, 3, symmetry=2)
    assert model.size == 79
    rgb = {tuple(int(v) for v in palette[i][:3]): i for i in range(len(palette))}
    dirt, sky = rgb[(0x7A, 0x52, 0x34)], rgb[(0xBA, 0xE0, 0xF8)]
    assert sample[-1].tolist() == [dirt] * sample.shape[1]
    assert sample[:2].tolist() == [[sky] * sample.shape[1]] * 2
    # The window at the bottom row wraps to rows 0 and 1: dirt on top, sky below.
    assert model.patterns[model.ground_pattern].tolist() == [[dirt] * 3, [sky] * 3, [sky] * 3]


# --- loading --------------------------------------------------------------------------------


def save_png(path: Path, rgba: npt.NDArray[np.uint8]) -> Path:
    Image.fromarray(rgba).save(path)
    return path


def test_palette_is_in_first_appearance_order_and_keeps_alpha(tmp_path: Path) -> None:
    red, white = [255, 0, 0, 255], [255, 255, 255, 255]
    ghost = [255, 255, 255, 128]  # white but half transparent: a different colour
    rgba = np.array([[white, red], [ghost, red]], dtype=np.uint8)
    sample, palette = load_sample(save_png(tmp_path / "s.png", rgba))
    assert palette.tolist() == [white, red, ghost]
    assert sample.tolist() == [[0, 1], [2, 1]]
    assert sample.dtype == np.uint8
    assert palette.dtype == np.uint8


def test_load_accepts_rgb_and_greyscale(tmp_path: Path) -> None:
    grey = np.array([[0, 200], [200, 0]], dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    sample, palette = load_sample(str(tmp_path / "g.png"))
    assert sample.tolist() == [[0, 1], [1, 0]]
    assert palette.tolist() == [[0, 0, 0, 255], [200, 200, 200, 255]]


# --- rendering ------------------------------------------------------------------------------


def test_wave_shape() -> None:
    assert wave_shape(10, 7, 3, periodic=True) == (10, 7)
    assert wave_shape(10, 7, 3, periodic=False) == (8, 5)
    with pytest.raises(InputError, match="cannot hold a 3x3 pattern"):
        wave_shape(2, 7, 3, periodic=False)


def test_periodic_render_reads_each_cells_top_left_pixel() -> None:
    model = model_of(symmetry=1)
    grid = np.array([[0, 1, 2], [3, 4, 2]], dtype=np.int32)
    assert colour_indices(model, grid, 3, 2, periodic=True).tolist() == S.tolist()
    rgba = render_overlapping(model, grid, 3, 2, periodic=True)
    assert rgba.shape == (2, 3, 4)
    assert rgba.dtype == np.uint8
    assert np.array_equal(rgba, model.palette[S])


def test_bounded_render_reads_the_last_cells_whole_pattern() -> None:
    model = model_of(symmetry=1)
    grid = np.array([[0, 1]], dtype=np.int32)  # wave 2x1 for a 3x2 picture
    assert colour_indices(model, grid, 3, 2, periodic=False).tolist() == S.tolist()


def test_undetermined_cells_fall_back_to_a_covering_pattern_or_grey() -> None:
    model = model_of(symmetry=1)
    periodic = np.array([[0, -1, 2], [3, 4, 2]], dtype=np.int32)
    # Pixel (1, 0) is also covered by cell (0, 0), whose P0 has 0 at offset (1, 0).
    assert colour_indices(model, periodic, 3, 2, True).tolist() == S.tolist()
    assert (
        colour_indices(model, np.full((2, 3), -1, np.int32), 3, 2, True).tolist() == [[-1] * 3] * 2
    )

    bounded = np.array([[-1, 1]], dtype=np.int32)
    # Column 0 is covered only by cell (0, 0).
    assert colour_indices(model, bounded, 3, 2, False).tolist() == [[-1, 0, 1], [-1, 1, 1]]
    bounded = np.array([[0, -1]], dtype=np.int32)
    # Column 1 is also covered by cell (0, 0); column 2 only by cell (1, 0).
    assert colour_indices(model, bounded, 3, 2, False).tolist() == [[0, 0, -1], [0, 1, -1]]
    rgba = render_overlapping(model, bounded, 3, 2, periodic=False)
    assert np.array_equal(rgba[:, 2], np.stack([UNKNOWN_RGBA] * 2))
    assert np.array_equal(rgba[:, 0], model.palette[[0, 0]])


def test_render_rejects_a_grid_of_the_wrong_shape_or_ids() -> None:
    model = model_of(symmetry=1)
    with pytest.raises(InputError, match=r"expected \(1, 2\)"):
        colour_indices(model, np.zeros((2, 3), np.int32), 3, 2, periodic=False)
    with pytest.raises(InputError, match=r"outside -1\.\.4"):
        colour_indices(model, np.array([[0, 5]], np.int32), 3, 2, periodic=False)


@pytest.mark.parametrize("periodic", [True, False])
def test_reference_solutions_render_to_sample_windows(periodic: bool) -> None:
    sample, palette = load_sample(SAMPLES / "maze.png")
    model = extract_patterns(sample, palette, 3)
    width, height = 10, 9
    ww, wh = wave_shape(width, height, 3, periodic)
    grid = solve_reference(model.allowed, model.weights, ww, wh, periodic, seed=7)
    assert grid is not None
    assert is_valid_tiling(grid, model.allowed, periodic)
    image = colour_indices(model, grid, width, height, periodic)
    assert (image >= 0).all()
    assert windows_are_patterns(image, model.patterns, periodic)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("N", [0, 1, 6])
def test_n_outside_2_to_5_is_refused(N: int) -> None:
    with pytest.raises(InputError, match=f"N must be between 2 and 5, got {N}"):
        extract_patterns(S, PALETTE, N)


@pytest.mark.parametrize("symmetry", [0, 3, 5, 16])
def test_symmetry_must_be_1_2_4_or_8(symmetry: int) -> None:
    with pytest.raises(InputError, match="symmetry must be 1, 2, 4 or 8"):
        extract_patterns(S, PALETTE, 2, symmetry=symmetry)


def test_bounded_sample_smaller_than_n_is_refused() -> None:
    with pytest.raises(SampleError, match=r"smaller than N=3.*periodic input"):
        extract_patterns(S, PALETTE, 3, periodic_input=False)


def test_sample_indices_must_lie_in_the_palette() -> None:
    with pytest.raises(SampleError, match="outside the palette"):
        extract_patterns(S + 1, PALETTE, 2)


def test_more_than_4096_patterns_is_refused() -> None:
    noise = np.random.default_rng(0).integers(0, 2, size=(64, 64), dtype=np.uint8)
    with pytest.raises(SampleError, match=r"gives \d+ patterns.*more than 4096"):
        extract_patterns(noise, PALETTE, 5)


@pytest.mark.parametrize(("colours", "refused"), [(256, False), (257, True)])
def test_at_most_256_colours(tmp_path: Path, colours: int, refused: bool) -> None:
    rgba = np.zeros((17, 16, 4), dtype=np.uint8)
    index = np.minimum(np.arange(17 * 16), colours - 1).reshape(17, 16)
    rgba[..., 0] = index % 256
    rgba[..., 1] = index // 256
    rgba[..., 3] = 255
    path = save_png(tmp_path / "many.png", rgba)
    if refused:
        with pytest.raises(SampleError, match="has 257 colours; at most 256"):
            load_sample(path)
    else:
        sample, palette = load_sample(path)
        assert palette.shape == (256, 4)
        assert int(sample.max()) == 255


def test_sample_larger_than_128_px_is_refused(tmp_path: Path) -> None:
    path = save_png(tmp_path / "big.png", np.zeros((4, 129, 4), dtype=np.uint8))
    with pytest.raises(SampleError, match="129x4 px; samples may be at most 128x128"):
        load_sample(path)


def test_missing_file_is_a_sample_error(tmp_path: Path) -> None:
    with pytest.raises(SampleError, match="does not exist"):
        load_sample(tmp_path / "nowhere.png")


def test_text_file_named_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(SampleError, match="is not an image"):
        load_sample(path)


def test_truncated_png_is_a_sample_error(tmp_path: Path) -> None:
    path = save_png(tmp_path / "cut.png", np.zeros((32, 32, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(SampleError, match=r"could not be read|is not an image"):
        load_sample(path)
