"""The hard ``highlands`` tileset (:mod:`tests.engine.highlands`): the committed files are what
the code draws, the rules are what the pictures say, and the solver finishes it every time —
with repairs and restarts, which is what the set is for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine import highlands
from worldgen.engine.compiled import compile_rules
from worldgen.engine.rules import forbidden_pairs
from worldgen.engine.solver import solve


def test_committed_files_are_what_the_code_draws(tmp_path: Path) -> None:
    highlands.draw(tmp_path)
    for drawn in sorted(tmp_path.iterdir()):
        assert drawn.read_bytes() == (highlands.FOLDER / drawn.name).read_bytes(), drawn.name
    assert sorted(p.name for p in highlands.FOLDER.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir()
    )


def test_neighbours_are_the_matching_marks() -> None:
    tileset = highlands.load()
    highlands.check(tileset)
    assert tileset.size == 62
    assert compile_rules(tileset.rules()).keys is not None  # a key join, like every shipped set


@pytest.mark.parametrize("side", [48, 256])
def test_every_seed_is_solved_and_valid(side: int) -> None:
    tileset = highlands.load()
    cr = compile_rules(tileset.rules())
    repaired = 0
    for seed in range(1, 11):
        result = solve(cr, side, side, seed=seed)
        assert result.solved, (seed, result.reason, result.attempts, result.backtracks)
        assert forbidden_pairs(result.grid, tileset.allowed) == 0
        repaired += result.backtracks > 0
    assert repaired >= 5, "the set should need repairs on most seeds; it got easier"
