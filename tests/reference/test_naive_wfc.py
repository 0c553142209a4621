"""Tests for the reference solver and checkers themselves, on instances small enough to count."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.naive_wfc import (
    OPPOSITE,
    agrees,
    all_solutions_count,
    invalid_pairs,
    is_valid_tiling,
    solve_reference,
    windows_are_patterns,
)

BoolArray = npt.NDArray[np.bool_]


def uniform(rule: BoolArray) -> BoolArray:
    """The same ``(T, T)`` rule in all four directions (it must be symmetric)."""
    return np.stack([rule] * 4)


# Two patterns that must differ from every neighbour: a checkerboard.
CHECKER = uniform(np.array([[False, True], [True, False]]))
# Anything goes.
FREE = uniform(np.ones((2, 2), dtype=np.bool_))
ONES = np.ones(2)


def stripes() -> BoolArray:
    """Pattern 0 and 1 alternate left-right; vertically a pattern repeats itself."""
    allowed = np.zeros((4, 2, 2), dtype=np.bool_)
    allowed[0] = allowed[2] = [[False, True], [True, False]]
    allowed[1] = allowed[3] = [[True, False], [False, True]]
    return allowed


# --- the checkers ---------------------------------------------------------------------------


def test_checkerboard_grid_is_valid() -> None:
    grid = np.array([[0, 1, 0, 1], [1, 0, 1, 0]])
    assert is_valid_tiling(grid, CHECKER, periodic=True)
    assert invalid_pairs(grid, CHECKER, periodic=True) == []


def test_invalid_pairs_names_each_violation_once() -> None:
    grid = np.array([[0, 0, 1], [1, 1, 0]])
    # (0,0)-(1,0) right, (0,1)-(1,1) right, (2,0)-(2,1) fine, (0,0)-(0,1) fine, (1,0)-(1,1) fine.
    assert invalid_pairs(grid, CHECKER, periodic=False) == [(0, 0, 2), (0, 1, 2)]
    assert not is_valid_tiling(grid, CHECKER, periodic=False)


def test_wrapping_pairs_count_only_when_periodic() -> None:
    grid = np.array([[0, 1, 0]])
    assert is_valid_tiling(grid, CHECKER, periodic=False)
    # Periodic: (2,0) wraps to (0,0), both 0; a 1-row grid is its own vertical neighbour.
    assert invalid_pairs(grid, CHECKER, periodic=True) == [
        (0, 0, 1),
        (1, 0, 1),
        (2, 0, 1),
        (2, 0, 2),
    ]


def test_undetermined_cells_are_never_valid() -> None:
    grid = np.array([[0, -1]])
    assert invalid_pairs(grid, FREE, periodic=False) == [(0, 0, 2)]
    assert not is_valid_tiling(np.array([[-1]]), FREE, periodic=False)


def test_an_asymmetric_table_is_judged_from_both_sides() -> None:
    allowed = FREE.copy()
    allowed[0, 1, 0] = False  # 0 may not sit left of 1, though allowed[2, 0, 1] says it may
    assert invalid_pairs(np.array([[0, 1]]), allowed, periodic=False) == [(0, 0, 2)]


def test_windows_are_patterns() -> None:
    image = np.array([[0, 1], [1, 0]])
    diagonal = np.array([[[0, 1], [1, 0]]])
    both = np.array([[[0, 1], [1, 0]], [[1, 0], [0, 1]]])
    assert windows_are_patterns(image, diagonal, periodic=False)
    assert not windows_are_patterns(image, diagonal, periodic=True)  # (1,0) wraps to [[1,0],[0,1]]
    assert windows_are_patterns(image, both, periodic=True)


def test_agrees_compares_only_the_overlap() -> None:
    a = ((0, 1), (2, 3))
    b = ((1, 9), (3, 9))
    assert agrees(a, b, 1, 0)  # b one to the right: a's right column is b's left column
    assert not agrees(a, b, 0, 1)
    assert agrees(a, b, 2, 0)  # no overlap at all


def test_all_solutions_count_by_hand() -> None:
    assert all_solutions_count(FREE, 2, 2, periodic=False, limit=100) == 16
    assert all_solutions_count(FREE, 2, 2, periodic=False, limit=5) == 5
    assert all_solutions_count(CHECKER, 3, 3, periodic=False, limit=100) == 2
    assert all_solutions_count(CHECKER, 4, 2, periodic=True, limit=100) == 2
    assert all_solutions_count(CHECKER, 3, 2, periodic=True, limit=100) == 0  # odd cycle
    assert all_solutions_count(CHECKER, 1, 1, periodic=True, limit=100) == 0  # own neighbour
    assert all_solutions_count(stripes(), 2, 3, periodic=True, limit=100) == 2


# --- the solver -----------------------------------------------------------------------------


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_solutions_are_valid(seed: int, periodic: bool) -> None:
    for allowed in (CHECKER, FREE, stripes()):
        grid = solve_reference(allowed, ONES, 4, 4, periodic, seed)
        assert grid is not None
        assert grid.shape == (4, 4)
        assert grid.dtype == np.int32
        assert is_valid_tiling(grid, allowed, periodic), invalid_pairs(grid, allowed, periodic)


def test_unsatisfiable_instance_returns_none() -> None:
    # Propagation alone cannot see the odd cycle: every cell keeps both patterns until an
    # observation, so each attempt fails only after observing, and all attempts fail.
    assert all_solutions_count(CHECKER, 3, 3, periodic=True, limit=1) == 0
    assert solve_reference(CHECKER, ONES, 3, 3, periodic=True, seed=1) is None


def test_pins_are_honoured_and_propagated() -> None:
    for seed in range(5):
        grid = solve_reference(CHECKER, ONES, 3, 3, False, seed, pins={(1, 0): 0})
        assert grid is not None
        assert grid.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]


def test_bans_are_honoured() -> None:
    bans = {(x, y): {0} for x in range(3) for y in range(2)}
    grid = solve_reference(FREE, ONES, 3, 2, True, seed=3, bans=bans)
    assert grid is not None
    assert grid.tolist() == [[1, 1, 1], [1, 1, 1]]


def test_contradicting_pins_return_none() -> None:
    pins = {(0, 0): 0, (1, 0): 0}
    assert solve_reference(CHECKER, ONES, 3, 3, False, seed=0, pins=pins) is None
    bans = {(0, 0): {0, 1}}
    assert solve_reference(FREE, ONES, 2, 2, False, seed=0, bans=bans) is None


def test_pins_off_the_grid_are_refused() -> None:
    with pytest.raises(ValueError, match="outside the 2x2 grid"):
        solve_reference(FREE, ONES, 2, 2, False, seed=0, pins={(2, 0): 0})


def test_same_seed_same_grid_and_seeds_differ() -> None:
    results = {seed: solve_reference(FREE, ONES, 5, 5, True, seed) for seed in range(6)}
    again = solve_reference(FREE, ONES, 5, 5, True, 4)
    assert again is not None
    first = results[4]
    assert first is not None
    assert np.array_equal(again, first)
    distinct = {tuple(g.ravel().tolist()) for g in results.values() if g is not None}
    assert len(distinct) > 1


def test_global_random_state_is_untouched() -> None:
    random.seed(1234)
    before = random.getstate()
    solve_reference(FREE, ONES, 4, 4, True, seed=9)
    assert random.getstate() == before


def test_weights_steer_the_choice() -> None:
    grid = solve_reference(FREE, np.array([1.0, 1000.0]), 5, 5, True, seed=2)
    assert grid is not None
    assert int((grid == 1).sum()) >= 23


@st.composite
def instances(draw: st.DrawFn) -> tuple[BoolArray, int, int, bool, dict[tuple[int, int], int]]:
    """A random direction-symmetric table for 1-3 patterns, a grid of at most 3x3 and pins."""
    t = draw(st.integers(1, 3))
    allowed = np.zeros((4, t, t), dtype=np.bool_)
    for d in (1, 2):
        bits = draw(st.lists(st.booleans(), min_size=t * t, max_size=t * t))
        allowed[d] = np.array(bits).reshape(t, t)
        allowed[OPPOSITE[d]] = allowed[d].T
    width, height = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    periodic = draw(st.booleans())
    cells = st.tuples(st.integers(0, width - 1), st.integers(0, height - 1))
    pins = draw(st.dictionaries(cells, st.integers(0, t - 1), max_size=2))
    return allowed, width, height, periodic, pins


@settings(max_examples=200, deadline=None)
@given(instance=instances(), seed=st.integers(0, 10_000))
def test_solver_agrees_with_brute_force(
    instance: tuple[BoolArray, int, int, bool, dict[tuple[int, int], int]], seed: int
) -> None:
    allowed, width, height, periodic, pins = instance
    weights = np.ones(allowed.shape[1])
    grid = solve_reference(allowed, weights, width, height, periodic, seed, pins=pins)
    solutions = all_solutions_count(allowed, width, height, periodic, limit=1, pins=pins)
    if solutions == 0:
        assert grid is None
    if grid is not None:
        assert solutions > 0
        assert is_valid_tiling(grid, allowed, periodic), invalid_pairs(grid, allowed, periodic)
        for (x, y), pattern in pins.items():
            assert grid[y, x] == pattern


def test_all_solutions_count_honours_pins_and_bans() -> None:
    assert all_solutions_count(CHECKER, 3, 3, False, limit=10, pins={(0, 0): 1}) == 1
    assert all_solutions_count(FREE, 2, 1, False, limit=10, bans={(0, 0): {0}}) == 2
    assert all_solutions_count(CHECKER, 2, 1, False, limit=10, pins={(0, 0): 0, (1, 0): 0}) == 0
