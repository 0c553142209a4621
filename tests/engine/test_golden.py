"""Golden digests of the solver: the exact bytes of many solves, frozen.

Speed work on the kernels must not change a single output byte (the world's golden tile digests
and every saved world depend on them). Each case hashes the grid, the final wave words and the
counters (status, reason, attempts, backtracks, observations) of one :func:`solve`. The cases cover
both models, every heuristic, bounded and periodic grids, pins, bans, both bias forms, the
world's refinement shape (ring pins + bias profiles), local backtracking, restarts and failures.

A deliberate change of the solver's output updates these digests in its own commit, which says
why (and tells the world's owner: its golden tiles change too). History: engine output 2
(exact fixed-point entropy sums, heap keys independent of the propagation method with an age
tie-break, first-in-first-out AC-3, repairs that grow only while failing, an observation
allowance per attempt) replaced output 1.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.engine.conftest import BUNDLED_TILESETS, SHARED_SAMPLES
from worldgen.engine.compiled import Method
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


def tileset_rules(name: str, method: Method = "auto") -> CompiledRules:
    key = f"tiles:{name}:{method}"
    if key not in _RULES:
        path = BUNDLED_TILESETS / name / f"{name}.xml"
        _RULES[key] = compile_rules(load_tileset(path, load_images=False).rules(), method)
    return _RULES[key]


def sample_rules(path: Path, symmetry: int = 8, method: Method = "auto") -> CompiledRules:
    key = f"sample:{path}:{symmetry}:{method}"
    if key not in _RULES:
        if not path.is_file():
            pytest.skip(f"sample {path} is absent")
        sample, palette = load_sample(path)
        table = extract_patterns(sample, palette, 3, symmetry).rules()
        _RULES[key] = compile_rules(table, method)
    return _RULES[key]


def bundled_sample(name: str) -> CompiledRules:
    return sample_rules(BUNDLED_TILESETS / "samples" / f"{name}.png")


def shared_sample(name: str, method: Method = "auto") -> CompiledRules:
    return sample_rules(SHARED_SAMPLES / "overlapping" / f"{name}.png", method=method)


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
    "islands-48-keys": plain(lambda: shared_sample("islands", "keys"), 48, 20, True),
    "terrain-40-keys": plain(lambda: tileset_rules("terrain", "keys"), 40, 1),
    "town-24": plain(lambda: shared_sample("town"), 24, 21, True),
    "garden-24-sym2": lambda: solve(
        sample_rules(SHARED_SAMPLES / "overlapping" / "garden.png", 2), 24, 24, seed=22
    ),
}

GOLDEN: dict[str, str] = {
    "city-32": "e00f3efd2fe7a9194b34dc0d8cd8a046fa7258a4e32049eb3c0a0495e9414afc",
    "corridors-40": "4460d2f96685db8b63faa8003b39649415e43fb2f075aae09d65150d3e5ce6e9",
    "flowers-24-bounded": "da1e6c4b319454497ed824cce1bcbdc544dbb2fb4f8459c13ee8ac3bf32068be",
    "garden-24-sym2": "0b6bb82779eef5b186b2f6bbf2ca73a93d9b0b4c8c77ab73183bc18918df05f5",
    "islands-48": "f73800755b66e1c605483e1d8b56bb8f0d2c54f957b9d3b8a1ffc528928243f2",
    "islands-48-keys": "f73800755b66e1c605483e1d8b56bb8f0d2c54f957b9d3b8a1ffc528928243f2",
    "lakes-20-mrv": "d1813818f3be07007c7d19a34e0a0d6667077b3a63e58a8fcd229e7eb8123c6d",
    "maze-64": "78a584c830b7ecbb45cc8692d4cedda5e3843e425b9b3dcc9bd3338c9bfc12bf",
    "maze-96-backtracks": "448d8497923374df3291e5829ebfe6505111cacce8bab1b0b247f8237ae08221",
    "pipes-24-torus": "7e4f1ecb5abae899f0a7cf808ab75e5cec4fbfd4cd743c2fbf6dd78ee32b2b8c",
    "pipes-30-scanline": "26b51f14a48b3f2bb441a5def033fab24cdf421f36221bd33a755507dc9123ea",
    "pipes-dense-bias": "a2ca9389848ceac7e01369d8c87d0e78b52a2261883717f233c0bb257c010e6f",
    "random-12-torus": "2f35a5690818d66ef176d1484153cd66bb997ce57dc6461a78f45b8664958ef4",
    "random-7-mrv": "024bfaa1d01f23e68efb83ae71e4a4b14dc9a2a6ec5aedb1648580db6de4bcfe",
    "random-8-budget": "70739ebb4dcb34ebe4910482f96cdc905025eb9c2fb3c4cd2a1b3478c10fc2ba",
    "random-8-contradiction": "a8069983fe3f5d7944812a20ec3c91962513c3c3d4db59112a7ff7ca765b1ebc",
    "random-8-restarts": "10c96367850cc64db5711cc51cabd5bc7cf76c9f8cf14e92049e209c6409f94d",
    "random-9-backtracks": "1dbc7c078231e15fd6391d5cf5cb96ea52c5d00999baf38eb5ebc9412d4b5ec2",
    "roads-20-scanline-torus": "e8d87de7e5865012d25b3f8cf9643d75965a7f8e5cac280bf8575ee583bedc38",
    "roads-37-entropy": "c1c4b844cab6a669c2a7769da00a1aa0b34f2e3f072e215a37d087fca57a3fe8",
    "roads-block-16": "c3498dba154f1d37b4a41e1c7858d444310f338d5c7bcfd4eb6e6f48c21686ee",
    "terrain-33-mrv-torus": "2b51def487077c33346a2de7bd48683df0272bdc341de7c49d7239233af82c25",
    "terrain-40-entropy": "7885c24543806fd22902149d7da3535eec1cdf7265e489ab6f2a3b0502b46c95",
    "terrain-40-keys": "7885c24543806fd22902149d7da3535eec1cdf7265e489ab6f2a3b0502b46c95",
    "terrain-block-16": "290c3554ca6f4e629145bec7bb0aecb2c76c07daa04a1f894b63908eee0d743e",
    "terrain-block-32": "797f99ea7b84f0df57894e43fb5e606192ecf7bbe035bb65ed53ca7a16eb0874",
    "town-24": "02b1962821f3afdbecf14fffbb341070362f04b725320cba12e5b400e30b4008",
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
