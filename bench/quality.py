"""World quality benchmark: does a world window look like a plain WFC solve of its model?

Run from the repository root (``bench/README.md`` defines every figure and lists the targets)::

    .venv/bin/python -m bench.quality [--only NAME ...] [--S 32] [--V 4] [--layers 2]

(``--S`` overrides every model's block size; without it each model has its catalog entry's,
as its new worlds do: ``lakes`` 16, the rest 32.)

For every bundled and shared sample and every tileset without classes, a 256 x 256 window of the
world (seed 42, at an arbitrary offset; for a sample with a ground, the 256 rows ending at the
ground row y = 0) is compared with a 256 x 256 plain ``generate`` of the same model and seed
(periodic for samples, bounded for tilesets, one cell per pixel). Cells are compared by *label*:
the colour a sample cell shows, the tile name (orientation dropped) of a tileset cell.

* **periodicity excess**: for every lag ``(dx, dy)`` with ``8 <= max(|dx|, |dy|) <= 64``, the
  fraction of cells equal to the cell at that lag minus the mean of that fraction over its 8
  neighbouring lags; the maximum over the lags. A wallpaper peaks at its period. Target: world
  <= plain + 0.02.
* **structure size**: the size-weighted mean size of 4-connected same-label components (the
  expected size of the component of a random cell), world / plain. Target 0.5 .. 2. Near a
  percolation threshold (dungeon: about half its cells are floor) one window's figure swings
  by 3x between places and between plain seeds, so ``--windows N`` also prints the ratio of the
  means over N world windows and N plain seeds (:func:`windows`).
* **local statistics**: total-variation distance between the histograms of 2 x 2 label windows
  of world and plain, beside its noise floor (the same distance between plain seeds s and s + 1).
  Target <= floor + 0.05.

Nothing here is timed; the figures are deterministic for a given commit.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from worldgen import tilesets
from worldgen.engine.generate import generate_overlapping, generate_tiled
from worldgen.engine.patterns import extract_patterns, load_sample
from worldgen.engine.solver import SolverBudget
from worldgen.engine.tileset import load_tileset
from worldgen.world import macro
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.model import sample_model
from worldgen.world.patches import load_or_build
from worldgen.world.spec import WorldSpec

DEFAULT = WorldSpec("tileset", "terrain", 0)
"""The spec defaults (block size, variants, layers) every figure is measured at unless told."""

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "samples"
RESULTS = ROOT / "bench" / "results"

SEED = 42
SIDE = 256
WINDOW = (7913, -5127)
"""Top-left cell of the world window (an arbitrary place, off every lattice alignment)."""
MIN_LAG, MAX_LAG = 8, 64
PERIODICITY_SLACK = 0.02
SIZE_RANGE = (0.5, 2.0)
LOCAL_SLACK = 0.05
PLAIN_SEEDS = 6
"""A plain solve that fails is retried with the next seeds (its seed is reported)."""

I64Array = npt.NDArray[np.int64]
Source = Literal["tileset", "sample"]


@dataclass(frozen=True)
class Case:
    """A model to measure: bundled ``name`` or a file path, with the settings it is meant for."""

    label: str
    source: Source
    name: str
    path: Path
    symmetry: int = 8
    ground: bool = False
    S: int = DEFAULT.S
    """The block size of the model's new worlds (its catalog entry's, else the default)."""


def _cases() -> tuple[Case, ...]:
    out: list[Case] = []
    for entry in tilesets.catalog():
        if entry.kind == "tiled":
            if load_tileset(entry.path, load_images=False).class_names():
                continue  # a tileset with classes follows its macro layer, not a plain solve
            S = WorldSpec.of_kind("tiled", entry.name, SEED).S  # the catalog's, as the web's
            out.append(Case(entry.name, "tileset", entry.name, entry.path, S=S))
        else:
            spec = WorldSpec.of_kind("overlapping", entry.name, SEED)
            out.append(
                Case(
                    entry.name, "sample", entry.name, entry.path,
                    spec.symmetry, spec.ground, spec.S,
                )
            )  # fmt: skip
    for png in sorted((SHARED / "overlapping").glob("*.png")):
        garden = png.stem == "garden"  # drawn for symmetry 2 with a ground (samples/README.md)
        out.append(Case(f"shared/{png.stem}", "sample", str(png), png, 2 if garden else 8, garden))
    for xml in sorted((SHARED / "tilesets").glob("*/*.xml")):
        if not load_tileset(xml, load_images=False).class_names():
            out.append(Case(f"shared/{xml.stem}.xml", "tileset", str(xml), xml))
    return tuple(out)


# ---------------------------------------------------------------------------------- metrics
def lag_agreement(labels: I64Array, radius: int) -> npt.NDArray[np.float64]:
    """``A[dy + r, dx + r]``: fraction of cells equal to the cell ``(dx, dy)`` away, |d| <= r.

    Only pairs inside the window count (no wrap-around), so plain periodic solves and world
    windows are measured alike.
    """
    h, w = labels.shape
    out = np.zeros((2 * radius + 1, 2 * radius + 1), dtype=np.float64)
    for dy in range(0, radius + 1):
        for dx in range(-radius, radius + 1):
            x0, x1 = max(0, -dx), w - max(0, dx)  # x range of the first cell of each pair
            a = labels[0 : h - dy, x0:x1]
            b = labels[dy:h, x0 + dx : x1 + dx]
            v = float(np.mean(a == b))
            out[radius + dy, radius + dx] = v
            out[radius - dy, radius - dx] = v  # the lag -d pairs the same cells
    return out


def periodicity_excess(labels: I64Array) -> float:
    """Max over lags ``8 <= max(|dx|,|dy|) <= 64`` of agreement minus its 8 neighbours' mean."""
    r = MAX_LAG + 1
    A = lag_agreement(labels, r)
    best = -1.0
    for dy in range(-MAX_LAG, MAX_LAG + 1):
        for dx in range(-MAX_LAG, MAX_LAG + 1):
            if max(abs(dx), abs(dy)) < MIN_LAG:
                continue
            y, x = r + dy, r + dx
            ring = A[y - 1 : y + 2, x - 1 : x + 2]
            mean = (float(ring.sum()) - float(A[y, x])) / 8.0
            best = max(best, float(A[y, x]) - mean)
    return best


def structure_size(labels: I64Array) -> float:
    """Size-weighted mean size of 4-connected same-label components (union-find, sizes²/cells)."""
    h, w = labels.shape
    flat = labels.reshape(-1).tolist()
    parent = list(range(h * w))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for y in range(h):
        row = y * w
        for x in range(w):
            i = row + x
            if x + 1 < w and flat[i] == flat[i + 1]:
                ra, rb = find(i), find(i + 1)
                if ra != rb:
                    parent[ra] = rb
            if y + 1 < h and flat[i] == flat[i + w]:
                ra, rb = find(i), find(i + w)
                if ra != rb:
                    parent[ra] = rb
    roots = np.array([find(i) for i in range(h * w)], dtype=np.int64)
    sizes = np.bincount(roots).astype(np.float64)
    return float((sizes**2).sum() / sizes.sum())


def window_histogram(labels: I64Array) -> dict[tuple[int, int, int, int], float]:
    """Frequencies of the 2 x 2 label windows (top-left, top-right, bottom-left, bottom-right)."""
    q = np.stack(
        [labels[:-1, :-1], labels[:-1, 1:], labels[1:, :-1], labels[1:, 1:]], axis=-1
    ).reshape(-1, 4)
    keys, counts = np.unique(q, axis=0, return_counts=True)
    total = float(counts.sum())
    return {
        (int(k[0]), int(k[1]), int(k[2]), int(k[3])): float(c) / total
        for k, c in zip(keys, counts, strict=True)
    }


def tv_distance(a: I64Array, b: I64Array) -> float:
    """Total-variation distance between the 2 x 2 window histograms of ``a`` and ``b``."""
    ha, hb = window_histogram(a), window_histogram(b)
    return 0.5 * sum(abs(ha.get(k, 0.0) - hb.get(k, 0.0)) for k in ha.keys() | hb.keys())


# ---------------------------------------------------------------------------------- inputs
def _pack(rgb: npt.NDArray[np.integer]) -> I64Array:
    c = np.asarray(rgb, dtype=np.int64)
    out: I64Array = (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
    return out


def _tile_ids(names: Sequence[str]) -> I64Array:
    """Per variant, an id of its tile name (``"<tile> <k>"`` without the orientation)."""
    tiles = sorted({n.rsplit(" ", 1)[0] for n in names})
    return np.array([tiles.index(n.rsplit(" ", 1)[0]) for n in names], dtype=np.int64)


def plain_labels(case: Case, seed: int) -> tuple[I64Array, int]:
    """Labels of a plain ``SIDE``² generate of the case's model, and the seed that solved."""
    budget = SolverBudget(max_attempts=20, max_backtracks=2000)
    for s in range(seed, seed + PLAIN_SEEDS):
        if case.source == "sample":
            sample, palette = load_sample(case.path)
            model = extract_patterns(sample, palette, 3, case.symmetry, True)
            res = generate_overlapping(
                model, SIDE, SIDE, periodic=True, seed=s, ground=case.ground, budget=budget
            )
            if res.solved:
                shown = model.patterns[res.result.grid, 0, 0]
                return _pack(model.palette[shown.astype(np.intp), :3]), s
        else:
            ts = load_tileset(case.path, load_images=False)
            res = generate_tiled(ts, SIDE, SIDE, periodic=False, seed=s, budget=budget)
            if res.solved:
                return _tile_ids(ts.variant_names)[res.result.grid], s
    raise RuntimeError(f"{case.label}: no plain solve in seeds {seed}..{seed + PLAIN_SEEDS - 1}")


def world_window(case: Case) -> tuple[int, int]:
    """Top-left cell of the measured window (a ground sample: the rows ending at y = 0)."""
    x, y = WINDOW
    return (x, 1 - SIDE) if case.ground else (x, y)


def windows(case: Case, n: int) -> list[tuple[int, int]]:
    """Top-left cells of ``n`` world windows: :func:`world_window` first, then places spread
    over +-10,000 cells by fixed strides (a ground sample's windows keep their rows)."""
    first = world_window(case)
    out = [first]
    for i in range(1, n):
        x = (i * 7919) % 20_000 - 10_000
        y = first[1] if case.ground else (i * 104_729) % 20_000 - 10_000
        out.append((x, y))
    return out


def world_labels(world: World, case: Case, at: tuple[int, int] | None = None) -> I64Array:
    """Labels of the world's ``SIDE``² window at ``at`` (default :func:`world_window`)."""
    x, y = at if at is not None else world_window(case)
    grid = world.region(x, y, SIDE, SIDE)
    model = world.model
    if model.colours is not None:
        return _pack(model.colours)[grid]
    return _tile_ids(model.labels)[grid]


def spec_for(case: Case, S: int, V: int, layers: int) -> WorldSpec:
    """The world spec of a case (the case's symmetry)."""
    return WorldSpec(case.source, case.name, SEED, symmetry=case.symmetry, S=S, V=V, layers=layers)


def world_for(case: Case, S: int, V: int, layers: int) -> World:
    """The case's world: from its spec, or (a sample with a ground) built from the model directly,
    with the ground row at y = 0."""
    if not case.ground:
        return build_world(spec_for(case, S, V, layers), allow_files=True)
    sample, palette = load_sample(case.path)
    model = sample_model(
        extract_patterns(sample, palette, 3, case.symmetry, True), case.label, True
    )
    return World(model, SEED, S=S, V=V, layers=layers, library=load_or_build(model, S, V))


# ---------------------------------------------------------------------------------- results
@dataclass
class Quality:
    """The figures of one model (None: not measured, see ``error``)."""

    case: str
    S: int = DEFAULT.S
    plain_seed: int | None = None
    world_period: float | None = None
    plain_period: float | None = None
    world_size: float | None = None
    plain_size: float | None = None
    size_ratio: float | None = None
    plain_size_ratio: float | None = None  # plain seed s+1 / seed s: how much plain itself varies
    windows: int = 1
    size_ratio_means: float | None = None  # mean over `windows` world windows / plain seeds
    local: float | None = None
    floor: float | None = None
    fallbacks: int = 0
    blocks: int = 0
    seconds: float = 0.0
    met: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


def measure(
    case: Case,
    S: int | None = None,
    V: int = DEFAULT.V,
    layers: int = DEFAULT.layers,
    n_windows: int = 1,
) -> Quality:
    """Every quality figure of one case (errors become ``Quality.error``, never a crash); with
    ``n_windows`` > 1 also the structure size ratio of the means over that many windows.
    ``S`` None: the case's own block size (:attr:`Case.S`)."""
    S = case.S if S is None else S
    q = Quality(case.label, S=S, windows=n_windows)
    started = time.perf_counter()
    try:
        plain, s = plain_labels(case, SEED)
        other, _ = plain_labels(case, s + 1)
        q.plain_seed = s
        world = world_for(case, S, V, layers)
        got = world_labels(world, case)
        q.fallbacks, q.blocks = world.fallbacks, world.fallbacks + world.solved_blocks
    except Exception as exc:  # a bench reports, it does not crash
        q.error = f"{type(exc).__name__}: {exc}"[:300]
        return q
    q.world_period, q.plain_period = periodicity_excess(got), periodicity_excess(plain)
    q.world_size, q.plain_size = structure_size(got), structure_size(plain)
    q.size_ratio = q.world_size / q.plain_size
    q.plain_size_ratio = structure_size(other) / q.plain_size
    q.local, q.floor = tv_distance(got, plain), tv_distance(plain, other)
    q.met = {
        "period": q.world_period <= q.plain_period + PERIODICITY_SLACK,
        "size": SIZE_RANGE[0] <= q.size_ratio <= SIZE_RANGE[1],
        "local": q.local <= q.floor + LOCAL_SLACK,
    }
    if n_windows > 1:
        world_sizes = [q.world_size]
        world_sizes += [
            structure_size(world_labels(world, case, at)) for at in windows(case, n_windows)[1:]
        ]
        plain_sizes = [q.plain_size, structure_size(other)]
        seed = s + 2
        while len(plain_sizes) < n_windows:
            more, used = plain_labels(case, seed)
            plain_sizes.append(structure_size(more))
            seed = used + 1
        q.size_ratio_means = float(np.mean(world_sizes) / np.mean(plain_sizes[:n_windows]))
        q.met["size means"] = SIZE_RANGE[0] <= q.size_ratio_means <= SIZE_RANGE[1]
    q.seconds = time.perf_counter() - started
    return q


# ---------------------------------------------------------------------------------- terrain
TERRAIN_CASES = (
    ("terrain", "terrain"),
    ("shared/terrain.xml", str(SHARED / "tilesets" / "terrain" / "terrain.xml")),
)
TERRAIN_SIDE = 512
TERRAIN_WINDOW = (-512, -512)
"""Top-left cell of the terrain window (coast, grassland, forest, hills and mountains)."""


@dataclass
class TerrainQuality:
    """A classed tileset's world (no plain comparator: a plain solve ignores the macro layer).

    ``period``: periodicity excess of tile names on a 256² window (a lattice shows as a peak;
    target <= 0.02). ``contour``: share of cells whose tile class equals the class of the smooth
    level at that cell, and ``lattice``: the same against the class of the nearest lattice vertex.
    ``disputed``: among the cells where those two classes differ (near class borders), the share
    whose tile follows the smooth level: 1 = borders follow the level contour, 0 = the lattice.
    ``tiles``: share of the window of each tile name (biomes), largest first.
    """

    case: str
    period: float | None = None
    contour: float | None = None
    lattice: float | None = None
    disputed: float | None = None
    tiles: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def measure_terrain(label: str, name: str, S: int, V: int, layers: int) -> TerrainQuality:
    """The terrain figures of one classed tileset (seed 42, a TERRAIN_SIDE² window)."""
    q = TerrainQuality(label)
    try:
        spec = WorldSpec("tileset", name, SEED, S=S, V=V, layers=layers)
        world = build_world(spec, allow_files=True)
        x, y = TERRAIN_WINDOW
        side = TERRAIN_SIDE
        grid = world.region(x, y, side, side)
    except Exception as exc:  # a bench reports, it does not crash
        q.error = f"{type(exc).__name__}: {exc}"[:300]
        return q
    names = [n.rsplit(" ", 1)[0] for n in world.model.labels]
    q.period = periodicity_excess(_tile_ids(world.model.labels)[grid[:SIDE, :SIDE]])
    tile_cls = world.variant_class[grid]
    ys = np.arange(y, y + side, dtype=np.int64)[:, None]
    xs = np.arange(x, x + side, dtype=np.int64)[None, :]
    smooth = macro.raw_classes(macro.level(SEED, xs, ys), world.K)
    q.contour = float(np.mean(tile_cls == smooth))
    lattice = world.lattice_classes_for(x, y, side, side)
    q.lattice = float(np.mean(tile_cls == lattice))
    disputed = smooth != lattice
    if disputed.any():
        q.disputed = float(np.mean(tile_cls[disputed] == smooth[disputed]))
    ids, counts = np.unique(np.array(names)[grid], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:8]
    q.tiles = {str(ids[i]): float(counts[i] / grid.size) for i in order}
    return q


def terrain_table(results: Sequence[TerrainQuality]) -> Table:
    """The printed terrain table."""
    t = Table(title=f"classed tilesets ({TERRAIN_SIDE}² window, seed 42)")
    for col in (
        "model", "period", "≤ 0.02?", "class = smooth level", "class = lattice",
        "disputed: follows level", "tiles",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col in ("model", "tiles") else "right")
    for r in results:
        if r.error is not None:
            t.add_row(r.case, f"[red]{r.error}[/]")
            continue
        ok = None if r.period is None else r.period <= PERIODICITY_SLACK
        tiles = ", ".join(f"{k} {v:.2f}" for k, v in list(r.tiles.items())[:5])
        t.add_row(
            r.case,
            _f(r.period, ".3f"),
            _mark(ok),
            _f(r.contour, ".3f"),
            _f(r.lattice, ".3f"),
            tiles,
        )
    return t


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("[green]yes[/]" if ok else "[red]no[/]")


def table(results: Sequence[Quality]) -> Table:
    """The printed table: figures, targets and whether each is met."""
    t = Table(title="world quality vs a plain solve (256² windows, seed 42)")
    for col in (
        "model", "S", "period world", "plain", "≤ +0.02?", "size world/plain", "0.5..2?",
        "(plain s+1/s)", "size, means", "local TV", "floor", "≤ +0.05?", "fallbacks",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        if r.error is not None:
            t.add_row(r.case, str(r.S), f"[red]{r.error}[/]")
            continue
        t.add_row(
            r.case, str(r.S), _f(r.world_period, ".3f"), _f(r.plain_period, ".3f"),
            _mark(r.met.get("period")), _f(r.size_ratio, ".2f"), _mark(r.met.get("size")),
            _f(r.plain_size_ratio, ".2f"),
            _f(r.size_ratio_means, ".2f") + (f" ({r.windows}) " if r.windows > 1 else "")
            + _mark(r.met.get("size means")),
            _f(r.local, ".3f"), _f(r.floor, ".3f"),
            _mark(r.met.get("local")),
            f"{r.fallbacks}/{r.blocks}",
        )  # fmt: skip
    return t


def run(
    only: Sequence[str] = (),
    S: int | None = None,
    V: int = DEFAULT.V,
    layers: int = DEFAULT.layers,
    log: Console | None = None,
    n_windows: int = 1,
) -> list[Quality]:
    """Measure every case (or those whose label contains one of ``only``)."""
    out = []
    for case in _cases():
        if only and not any(o in case.label for o in only):
            continue
        q = measure(case, S, V, layers, n_windows)
        if log is not None:
            log.print(f"  {case.label}: {q.seconds:.1f} s" + (f" ({q.error})" if q.error else ""))
        out.append(q)
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(prog="bench.quality", description=__doc__.split("\n")[0])
    p.add_argument("--only", action="append", default=[], help="only cases containing NAME")
    p.add_argument(
        "--S", type=int, default=None,
        help=f"block size (default: each model's catalog one, else {DEFAULT.S})",
    )  # fmt: skip
    p.add_argument("--V", type=int, default=4, help="patch variants (default 4)")
    p.add_argument("--layers", type=int, default=2, help="refinement layers (default 2)")
    p.add_argument(
        "--windows", type=int, default=1,
        help="also the size ratio of the means over N world windows and N plain seeds",
    )  # fmt: skip
    p.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON results."""
    args = parse_args(argv)
    log = Console()
    results = run(args.only, args.S, args.V, args.layers, log, max(1, args.windows))
    log.print(table(results))
    terrain = [
        measure_terrain(label, name, args.S or DEFAULT.S, args.V, args.layers)
        for label, name in TERRAIN_CASES
        if not args.only or any(o in label for o in args.only)
    ]
    if terrain:
        log.print(terrain_table(terrain))
    if not args.no_json:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        doc = {"S": args.S, "V": args.V, "layers": args.layers, "seed": SEED, "window": WINDOW}
        doc["windows"] = max(1, args.windows)
        doc["results"] = [asdict(r) for r in results]
        doc["terrain"] = [asdict(r) for r in terrain]
        path = RESULTS / f"quality-{stamp}.json"
        path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        log.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
