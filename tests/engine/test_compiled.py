"""Tests of the rule packing (:mod:`worldgen.engine.compiled`) and of the two propagation
methods it selects: key classes must reproduce the table exactly, and both methods must give the
same output whenever no contradiction occurs (the kernels' central promise)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine.conftest import OverlappingFactory, TilesetFactory
from tests.reference.naive_wfc import is_valid_tiling
from worldgen.engine import compiled as compiled_module
from worldgen.engine.compiled import CompiledRules, compile_rules, key_classes
from worldgen.engine.rules import RuleTable, forbidden_pairs, group_rows, to_bitsets
from worldgen.engine.solver import (
    Constraints,
    Heuristic,
    Solver,
    SolverBudget,
    SolveResult,
    solve,
)
from worldgen.errors import InputError

HEURISTICS: tuple[Heuristic, ...] = ("entropy", "mrv", "scanline")
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
BoolArray = npt.NDArray[np.bool_]


def join_table(kout: list[npt.NDArray[np.int64]], kin: list[npt.NDArray[np.int64]]) -> BoolArray:
    """allowed[d, a, b] = kout[d][a] == kin[d][b] >= 0, made symmetric under reversal."""
    t = kout[0].shape[0]
    allowed = np.zeros((4, t, t), dtype=np.bool_)
    for d in (1, 2):  # down and right; up and left are their transposes
        allowed[d] = (kout[d][:, None] == kin[d][None, :]) & (kout[d][:, None] >= 0)
    allowed[3] = allowed[1].T
    allowed[0] = allowed[2].T
    return allowed


@st.composite
def key_join_rules(draw: st.DrawFn, min_t: int = 1, max_t: int = 70) -> RuleTable:
    """A random key-join table: each pattern has an out key and an in key per axis."""
    t = draw(st.integers(min_t, max_t))
    keys = draw(st.integers(1, 6))
    vec = st.lists(st.integers(-1, keys - 1), min_size=t, max_size=t)
    kout = [np.zeros(t, np.int64)] + [np.array(draw(vec), dtype=np.int64) for _ in range(2)]
    kin = [np.zeros(t, np.int64)] + [np.array(draw(vec), dtype=np.int64) for _ in range(2)]
    kout.append(kout[0])
    kin.append(kin[0])
    allowed = join_table(kout, kin)
    allowed[:, 0, 0] = True  # pattern 0 tiles the plane alone, so most grids are solvable
    if key_classes(allowed) is None:  # the extra pair may break the join: plain 1-key table
        allowed = np.ones((4, t, t), dtype=np.bool_)
    weights = draw(st.lists(st.floats(0.1, 20.0), min_size=t, max_size=t))
    return RuleTable(allowed=allowed, weights=np.array(weights))


@PROPERTY
@given(rules=key_join_rules())
def test_key_classes_reproduce_the_table(rules: RuleTable) -> None:
    keys = key_classes(rules.allowed)
    assert keys is not None
    for d in range(4):
        rebuilt = (keys.kout[d][:, None] == keys.kin[d][None, :]) & (keys.kout[d][:, None] >= 0)
        assert np.array_equal(rebuilt, rules.allowed[d])
        assert np.array_equal(keys.nokey[d], to_bitsets(keys.kout[d] < 0))
        for k in range(keys.keys):
            members = np.zeros(rules.size + 64, dtype=np.bool_)
            for i in range(keys.in_start[d, k], keys.in_start[d, k + 1]):
                w, mask = int(keys.in_word[d, i]), int(keys.in_mask[d, i])
                for bit in range(64):
                    if mask >> bit & 1:
                        members[64 * w + bit] = True
            assert np.array_equal(np.flatnonzero(members), np.flatnonzero(keys.kin[d] == k))
            assert keys.sizes[d, k] == int((keys.kin[d] == k).sum())
        packed = (keys.kin4 >> (16 * d)) & 0xFFFF
        assert np.array_equal(np.where(packed == 0xFFFF, -1, packed), keys.kin[d])


@PROPERTY
@given(rules=key_join_rules())
def test_keys_are_numbered_by_the_first_pattern_that_needs_them(rules: RuleTable) -> None:
    keys = key_classes(rules.allowed)
    assert keys is not None
    for d in range(4):
        seen = [int(k) for k in keys.kout[d] if k >= 0]
        assert list(dict.fromkeys(seen)) == list(range(len(set(seen))))


@PROPERTY
@given(
    rows=st.integers(0, 40).flatmap(
        lambda n: st.integers(0, 12).flatmap(
            lambda w: st.lists(
                st.lists(st.integers(0, 3), min_size=w, max_size=w), min_size=n, max_size=n
            ).map(lambda r: np.array(r, dtype=np.uint8).reshape(n, w))
        )
    )
)
def test_group_rows_gives_equal_ids_exactly_to_equal_rows(rows: npt.NDArray[np.uint8]) -> None:
    ids = group_rows(rows * np.uint8(85))  # values 0, 85, 170, 255: every bit of a byte used
    assert ids.shape == (rows.shape[0],)
    for i in range(rows.shape[0]):
        for j in range(rows.shape[0]):
            assert (ids[i] == ids[j]) == np.array_equal(rows[i], rows[j])


@PROPERTY
@given(t=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_to_bitsets_sets_bit_t_of_word_t_over_64(t: int, seed: int) -> None:
    mask = np.random.default_rng(seed).random((3, t)) < 0.5
    words = to_bitsets(mask)
    assert words.dtype == np.uint64
    assert words.shape == (3, (t + 63) // 64)
    for row in range(3):
        expected = [0] * words.shape[1]
        for b in np.flatnonzero(mask[row]).tolist():
            expected[b // 64] |= 1 << (b % 64)
        assert [int(w) for w in words[row]] == expected


def test_a_table_with_overlapping_rows_is_not_a_key_join() -> None:
    allowed = np.ones((4, 3, 3), dtype=np.bool_)
    allowed[:, 0, 1] = allowed[:, 1, 0] = False  # rows {0, 2} and {1, 2} share pattern 2
    assert key_classes(allowed) is None
    rules = RuleTable(allowed=allowed, weights=np.ones(3))
    assert compile_rules(rules).method == "bits"
    with pytest.raises(InputError, match="not a key join"):
        compile_rules(rules, "keys")
    with pytest.raises(InputError, match="propagation method"):
        compile_rules(rules, "fast")  # type: ignore[arg-type]


def test_every_shipped_model_is_a_key_join(
    overlapping_model: OverlappingFactory, tileset: TilesetFactory
) -> None:
    for name in ("maze", "islands", "town"):
        assert key_classes(overlapping_model(name).allowed) is not None
    for name in ("terrain", "pipes", "roads"):
        assert key_classes(tileset("bundled", name).rules().allowed) is not None


def same_output(a: SolveResult, b: SolveResult) -> bool:
    return (
        a.grid.tobytes() == b.grid.tobytes()
        and a.words.tobytes() == b.words.tobytes()
        and (a.status, a.reason, a.attempts, a.observations)
        == (b.status, b.reason, b.attempts, b.observations)
    )


@PROPERTY
@given(
    rules=key_join_rules(),
    width=st.integers(1, 12),
    height=st.integers(1, 12),
    periodic=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
    heuristic=st.sampled_from(HEURISTICS),
)
def test_methods_agree_whenever_no_repair_happens(
    rules: RuleTable, width: int, height: int, periodic: bool, seed: int, heuristic: Heuristic
) -> None:
    # Without repairs an attempt's states do not depend on the method; with one contradiction
    # allowed to end the attempt, both methods meet it in the same step.
    budget = SolverBudget(max_attempts=1, max_backtracks=0)
    by_bits = solve(
        compile_rules(rules, "bits"), width, height, periodic=periodic, seed=seed,
        heuristic=heuristic, budget=budget,
    )  # fmt: skip
    by_keys = solve(
        compile_rules(rules, "keys"), width, height, periodic=periodic, seed=seed,
        heuristic=heuristic, budget=budget,
    )  # fmt: skip
    assert by_bits.solved == by_keys.solved
    assert by_bits.observations == by_keys.observations
    if by_keys.solved:
        assert same_output(by_bits, by_keys)
        assert is_valid_tiling(by_keys.grid, rules.allowed, periodic)


@pytest.mark.parametrize(("name", "side"), [("maze", 40), ("islands", 24), ("town", 12)])
def test_methods_agree_on_samples(
    overlapping_model: OverlappingFactory, name: str, side: int
) -> None:
    table = overlapping_model(name).rules()
    for seed in (1, 2):
        results = [
            solve(compile_rules(table, m), side, side, periodic=True, seed=seed)
            for m in ("bits", "keys")
        ]
        assert results[0].backtracks == results[1].backtracks == 0
        assert same_output(results[0], results[1])


def test_methods_agree_on_a_pinned_biased_block(tileset: TilesetFactory) -> None:
    """The world's refinement shape: a ring pinned to a solved grid, bias profiles per cell."""
    table = tileset("bundled", "terrain").rules()
    below = solve(compile_rules(table), 16, 16, seed=5).grid
    pins = below.copy()
    pins[1:-1, 1:-1] = -1
    rng = np.random.default_rng(4)
    profiles = rng.uniform(0.2, 5.0, size=(6, table.size))
    cells = rng.integers(0, 6, size=(16, 16))
    cons = Constraints(pins=pins, bias=(profiles, cells))
    out = [
        Solver(compile_rules(table, m), 16, 16).solve(seed=9, constraints=cons)
        for m in ("bits", "keys")
    ]
    assert out[0].solved
    assert same_output(out[0], out[1])
    assert forbidden_pairs(out[1].grid, table.allowed) == 0


def plain_bits(table: RuleTable, monkeypatch: pytest.MonkeyPatch) -> CompiledRules:
    """``compile_rules(table, "bits")`` without the key arrays (the union every time)."""
    with monkeypatch.context() as patch:
        patch.setattr(compiled_module, "_KEYED_BITS_WORDS", 1 << 30)
        rules = compile_rules(table, "bits")
        assert rules.kernel.in_start.shape[1] == 1
    return rules


def test_bits_with_keys_repair_exactly_like_the_plain_union(
    overlapping_model: OverlappingFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Revising by dead keys must give the very same wave after every revision, so even the
    # contradictions (and the repairs that depend on where they were found) are the same.
    table = overlapping_model("town").rules()
    keyed = compile_rules(table, "bits")
    assert keyed.words >= 5
    assert keyed.kernel.in_start.shape[1] > 1
    plain = plain_bits(table, monkeypatch)
    repairs = 0
    for frac, seed in ((0.15, 2), (0.15, 3), (0.2, 1), (0.2, 3), (0.02, 1)):
        bans = np.random.default_rng(seed).random((16, 16, table.size)) < frac
        cons = Constraints(bans=bans)
        out = [solve(r, 16, 16, seed=seed, constraints=cons) for r in (keyed, plain)]
        assert same_output(out[0], out[1])
        assert out[0].backtracks == out[1].backtracks
        assert out[0].solved
        repairs += out[0].backtracks
    assert repairs > 0


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    rules=key_join_rules(257, 400),
    side=st.integers(1, 9),
    periodic=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
)
def test_bits_with_keys_agree_with_the_plain_union_on_wide_tables(
    rules: RuleTable, side: int, periodic: bool, seed: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        plain = plain_bits(rules, patch)
    keyed = compile_rules(rules, "bits")
    budget = SolverBudget(max_attempts=3, max_backtracks=5)
    out = [
        solve(r, side, side + 1, periodic=periodic, seed=seed, budget=budget)
        for r in (keyed, plain)
    ]
    assert same_output(out[0], out[1])
    assert out[0].backtracks == out[1].backtracks


@pytest.mark.parametrize("patterns", [1, 40, 64, 65, 150, 192, 193, 256, 257])
def test_byte_lookup_table_holds_the_unions_of_compat_in_its_layout(patterns: int) -> None:
    """Entry (byte position k, value b) of direction d is the union of ``compat[d, t]`` over
    t = 8k + each set bit of b: interleaved (a byte's four directions side by side) for 3 and
    4 words, by direction otherwise, as the kernels read it."""
    rng = np.random.default_rng(patterns)
    allowed = rng.random((4, patterns, patterns)) < 0.05
    allowed[0] = allowed[2].T
    allowed[3] = allowed[1].T
    cr = compile_rules(RuleTable(allowed=allowed, weights=np.ones(patterns)), "bits")
    nw, lut = cr.words, cr.lut
    interleaved = nw in (3, 4)
    assert lut.shape == ((nw * 8, 256, 4 * nw) if interleaved else (4 * nw * 8, 256, nw))
    for d in range(4):
        for k in range(nw * 8):
            for b in (1, 0x80, 0x5A, 0xFF, int(rng.integers(256))):
                want = np.zeros(nw, dtype=np.uint64)
                for bit in range(8):
                    t = 8 * k + bit
                    if b >> bit & 1 and t < patterns:
                        want |= cr.compat[d, t]
                got = lut[k, b, d * nw : (d + 1) * nw] if interleaved else lut[d * nw * 8 + k, b]
                assert np.array_equal(got, want), (d, k, b)


@pytest.mark.parametrize(
    ("width", "height", "periodic"),
    [(1, 9, True), (9, 1, True), (1, 1, True), (12, 10, True), (12, 10, False)],
)
def test_interleaved_table_solves_exactly_like_the_table_by_direction(
    width: int, height: int, periodic: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3-word table builds a cell's four unions in one pass; laid out by direction it builds
    them one at a time. Same unions in the same order, so the same solves, repairs and failures
    included (on a torus one cell wide a cell is its own neighbour, and revising it changes the
    unions of its other directions)."""
    patterns = 150
    rng = np.random.default_rng(width * 100 + height)
    allowed = rng.random((4, patterns, patterns)) < 0.03
    planted = rng.integers(patterns, size=(height, width))
    for y in range(height):
        for x in range(width):
            a = planted[y, x]
            allowed[2, a, planted[y, (x + 1) % width]] = True
            allowed[1, a, planted[(y + 1) % height, x]] = True
    allowed[0] = allowed[2].T
    allowed[3] = allowed[1].T
    rules = RuleTable(allowed=allowed, weights=rng.random(patterns) + 0.1)
    fused = compile_rules(rules, "bits")
    _ = fused.kernel  # the look-up table is built on first use: before the patch
    monkeypatch.setattr(compiled_module, "_INTERLEAVED_WORDS", ())
    by_direction = compile_rules(rules, "bits")
    assert fused.lut.shape[2] == 4 * fused.words
    assert by_direction.lut.shape[2] == by_direction.words
    outcomes = set()
    repairs = 0
    for seed in range(12):
        budget = SolverBudget(max_attempts=2, max_backtracks=20)
        one = solve(fused, width, height, periodic=periodic, seed=seed, budget=budget)
        two = solve(by_direction, width, height, periodic=periodic, seed=seed, budget=budget)
        assert same_output(one, two)
        assert one.backtracks == two.backtracks
        assert one.order is not None
        assert two.order is not None
        assert np.array_equal(one.order, two.order)
        outcomes.add(one.status)
        repairs += one.backtracks
        if one.solved:
            assert is_valid_tiling(one.grid, allowed, periodic)
    assert "solved" in outcomes
    if width * height > 100:
        assert repairs > 0  # so the repairs are compared too
