"""Golden digests of the solver: the exact bytes of many solves, frozen.

Speed work on the kernels must not change a single output byte (the world's golden tile digests
and every saved world depend on them). Each case hashes the grid, the final wave words and the
counters (status, reason, attempts, backtracks, observations) of one :func:`solve`. The cases cover
both models, every heuristic, bounded and periodic grids, pins, bans, both bias forms, the
world's refinement shape (ring pins + bias profiles), local backtracking, restarts and failures.

A deliberate change of the solver's output updates these digests in its own commit, which says
why (and tells the world's owner: its golden tiles change too).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.engine.conftest import BUNDLED_TILESETS, SHARED_SAMPLES
from worldgen.engine.patterns import extract_patterns, load_sample
from worldgen.engine.rng import mix
from worldgen.engine.rules import RuleTable
from worldgen.engine.solver import (
    CompiledRules,
    Constraints,
    Heuristic,
    SolverBudget,
    SolveResult,
    compile_rules,
    solve,
)
from worldgen.engine.tileset import load_tileset

_RULES: dict[str, CompiledRules] = {}


def result_digest(res: SolveResult) -> str:
    """sha256 over everything a caller can observe of a result (timing aside)."""
    h = hashlib.sha256()
    h.update(
        f"{res.status}|{res.reason}|{res.attempts}|{res.backtracks}|{res.observations}".encode()
    )
    h.update(np.ascontiguousarray(res.grid, dtype=np.int32).tobytes())
    h.update(np.ascontiguousarray(res.words, dtype=np.uint64).tobytes())
    return h.hexdigest()


def tileset_rules(name: str) -> CompiledRules:
    key = f"tiles:{name}"
    if key not in _RULES:
        path = BUNDLED_TILESETS / name / f"{name}.xml"
        _RULES[key] = compile_rules(load_tileset(path, load_images=False).rules())
    return _RULES[key]


def sample_rules(path: Path, symmetry: int = 8) -> CompiledRules:
    key = f"sample:{path}:{symmetry}"
    if key not in _RULES:
        if not path.is_file():
            pytest.skip(f"sample {path} is absent")
        sample, palette = load_sample(path)
        _RULES[key] = compile_rules(extract_patterns(sample, palette, 3, symmetry).rules())
    return _RULES[key]


def bundled_sample(name: str) -> CompiledRules:
    return sample_rules(BUNDLED_TILESETS / "samples" / f"{name}.png")


def shared_sample(name: str) -> CompiledRules:
    return sample_rules(SHARED_SAMPLES / "overlapping" / f"{name}.png")


def hashed_rules(patterns: int, percent: int, salt: int) -> RuleTable:
    """Random symmetric rules from integer hashes (pattern 0 tiles the plane alone)."""
    right = np.zeros((patterns, patterns), dtype=np.bool_)
    down = np.zeros((patterns, patterns), dtype=np.bool_)
    for a in range(patterns):
        for b in range(patterns):
            right[a, b] = mix(salt, 1, a, b) % 100 < percent
            down[a, b] = mix(salt, 2, a, b) % 100 < percent
    right[0, 0] = down[0, 0] = True
    weights = np.array([1.0 + mix(salt, 3, t) % 50 / 7.0 for t in range(patterns)])
    allowed = np.stack([right.T, down, right, down.T])
    return RuleTable(allowed=allowed, weights=weights)


def block_like(cr: CompiledRules, side: int, seed: int, bands: int) -> SolveResult:
    """The world's refinement shape: a ring pinned to a solved grid, bias profiles per cell."""
    below = solve(cr, side, side, seed=seed + 1000).grid
    pins = below.astype(np.int32).copy()
    pins[1:-1, 1:-1] = -1
    t = cr.patterns
    profiles = np.array(
        [[0.25 + (mix(seed, 4, b, p) % 1000) / 250.0 for p in range(t)] for b in range(bands)]
    )
    ys, xs = np.mgrid[0:side, 0:side]
    cell_band = ((xs + 2 * ys) * bands // (3 * side)).astype(np.int32)
    return solve(
        cr, side, side, seed=seed,
        constraints=Constraints(pins=pins, bias=(profiles, cell_band)),
        budget=SolverBudget(max_attempts=4, max_backtracks=200),
    )  # fmt: skip


def dense_bias(cr: CompiledRules, side: int, seed: int) -> SolveResult:
    t = cr.patterns
    bias = np.ones((side, side, t))
    bias[: side // 2, :, : t // 2] = 3.0
    bias[side // 2 :, :, t // 2 :] = 0.2
    bans = np.zeros((side, side, t), dtype=np.bool_)
    bans[0, :, 0] = True
    return solve(cr, side, side, seed=seed, constraints=Constraints(bans=bans, bias=bias))


def plain(
    cr: Callable[[], CompiledRules | RuleTable],
    side: int,
    seed: int,
    periodic: bool = False,
    heuristic: Heuristic = "entropy",
    budget: SolverBudget | None = None,
) -> Callable[[], SolveResult]:
    return lambda: solve(
        cr(), side, side, periodic=periodic, seed=seed, heuristic=heuristic, budget=budget
    )


CASES: dict[str, Callable[[], SolveResult]] = {
    "terrain-40-entropy": plain(lambda: tileset_rules("terrain"), 40, 1),
    "terrain-33-mrv-torus": plain(lambda: tileset_rules("terrain"), 33, 2, True, "mrv"),
    "pipes-24-torus": plain(lambda: tileset_rules("pipes"), 24, 3, True),
    "pipes-30-scanline": plain(lambda: tileset_rules("pipes"), 30, 4, False, "scanline"),
    "roads-20-scanline-torus": plain(lambda: tileset_rules("roads"), 20, 5, True, "scanline"),
    "roads-37-entropy": plain(lambda: tileset_rules("roads"), 37, 6),
    "city-32": plain(lambda: bundled_sample("city"), 32, 7, True),
    "corridors-40": plain(lambda: bundled_sample("corridors"), 40, 8, True),
    "flowers-24-bounded": plain(lambda: bundled_sample("flowers"), 24, 9),
    "lakes-20-mrv": plain(lambda: bundled_sample("lakes"), 20, 10, True, "mrv"),
    "terrain-block-16": lambda: block_like(tileset_rules("terrain"), 16, 11, 32),
    "roads-block-16": lambda: block_like(tileset_rules("roads"), 16, 12, 8),
    "terrain-block-32": lambda: block_like(tileset_rules("terrain"), 32, 13, 32),
    "pipes-dense-bias": lambda: dense_bias(tileset_rules("pipes"), 20, 14),
    "random-9-backtracks": plain(lambda: hashed_rules(9, 35, 1), 24, 15),
    "random-12-torus": plain(lambda: hashed_rules(12, 45, 2), 21, 16, True),
    "random-7-mrv": plain(lambda: hashed_rules(7, 30, 3), 18, 17, False, "mrv"),
    "random-8-restarts": plain(
        lambda: hashed_rules(8, 25, 27),
        20,
        27,
        False,
        "entropy",
        SolverBudget(max_attempts=5, max_backtracks=4),
    ),
    "random-8-contradiction": plain(
        lambda: hashed_rules(8, 30, 13),
        20,
        13,
        False,
        "entropy",
        SolverBudget(max_attempts=5, max_backtracks=4),
    ),
    "random-8-budget": plain(
        lambda: hashed_rules(8, 30, 25), 30, 25, True, "entropy", SolverBudget(max_observations=150)
    ),
    "maze-64": plain(lambda: shared_sample("maze"), 64, 19, True),
    "maze-96-backtracks": plain(lambda: shared_sample("maze"), 96, 1, True),
    "islands-48": plain(lambda: shared_sample("islands"), 48, 20, True),
    "town-24": plain(lambda: shared_sample("town"), 24, 21, True),
    "garden-24-sym2": lambda: solve(
        sample_rules(SHARED_SAMPLES / "overlapping" / "garden.png", 2), 24, 24, seed=22
    ),
}

GOLDEN: dict[str, str] = {
    "city-32": "6c377d5117ee43bace17274395c919d1479f3b69e3e34435daafa95a5f24c3c4",
    "corridors-40": "b6c0c7b58950cc1a7fbeac781d2a3802561170d0fabc8aa71b18769c10cbf8b0",
    "flowers-24-bounded": "d5933e3556da76383a04064baee0b89a22786840862851c593554d378e907ceb",
    "garden-24-sym2": "9d46854ee02ac0c9a72dde16088017d269666baa52ee645f688a379745916ba5",
    "islands-48": "7c06f26b5506a844c52d05ee881437b04123d59e680d33d497a2963a426c64db",
    "lakes-20-mrv": "a92b43dcc672a46a962ea51c23805236f9063c8cd95cee8f7891a7d2b1f2ea96",
    "maze-64": "43e98a48cfa578c7fcb67ead330a3b90938b3e919555a8e15be9927bd4be18a0",
    "maze-96-backtracks": "92e88485fb96c0718dbc2db04d676c02ff0ceddbffe210bef06b5f2733a65870",
    "pipes-24-torus": "f0aca40f6bc35c2ddfb771b923b342d71007dbee7bd6a3d3f2d6e148e4122570",
    "pipes-30-scanline": "26b51f14a48b3f2bb441a5def033fab24cdf421f36221bd33a755507dc9123ea",
    "pipes-dense-bias": "03a69c79443168d7d44ba9a0ee61b00691a2c1ab2e1e639bbe10614fb1d9d39a",
    "random-12-torus": "2cf733cf3826874813230fdb1dd4a7842044b1cc509aeb0438bb70e6f33245c2",
    "random-7-mrv": "33bab40020cb94e51743994029439c8e0b77a2b3873ba090d0aeb0eaff56c8bb",
    "random-8-budget": "e10c89ef4f181306889e70a229016b62059ff85891072d5e39ad7e81cc5e10e9",
    "random-8-contradiction": "f80dad66e66d90cc65248755f90c57816208afd36594c6a9e30a2853368aa7da",
    "random-8-restarts": "f33a11a7ef5f422da648dbecdfa5f7d9c18e97031c3e6e424948e8035e461ff3",
    "random-9-backtracks": "73f484eb212c56110982680c1eb0065ad461a8ad0ba0b310680b43010974a0e7",
    "roads-20-scanline-torus": "3fb824c9f43ce71aacf59d9209ea8604112b886bc17a25b3590a4fcbfc234fb4",
    "roads-37-entropy": "ed994235e67136d9f2805d5e52aa2fe2620ce6cdba79db8bb9c1865c72e78ce6",
    "roads-block-16": "4e438a01afb800e82075b404f2e7f919b847de30ebd83cbab4a885a0941d4136",
    "terrain-33-mrv-torus": "57cc0a811d2a08f84503ec05b598947ddc2158721601d7be9d5f149497be813d",
    "terrain-40-entropy": "0ccf78b3851bae04c4d63ff2f20d63a2b94c412a316525c135fa8f7af8c649cc",
    "terrain-block-16": "a2cf44aa65238432f3a57799b6178a804b14254eb19e6461e681f162d949c3c6",
    "terrain-block-32": "db0f2f408d600cf1571d6f23adfab8432d0e23626d003f4f95db794191d9f8cb",
    "town-24": "13d4d17186fab93a1c078b1140e88d7538f5b403885c0116ab27fd9185f5b79f",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_solve_digest(name: str) -> None:
    assert result_digest(CASES[name]()) == GOLDEN[name]


def print_golden() -> None:  # pragma: no cover - run by hand to (re)write GOLDEN
    """Write the current digests in the form of ``GOLDEN``'s entries to stdout."""
    for name in sorted(CASES):
        try:
            res = CASES[name]()
        except pytest.skip.Exception:
            continue
        sys.stdout.write(
            f'    "{name}": "{result_digest(res)}",  # {res.status} {res.reason} '
            f"a{res.attempts} b{res.backtracks} o{res.observations}\n"
        )
