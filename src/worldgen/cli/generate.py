"""``worldgen generate``, ``worldgen tilesets`` and ``worldgen demo``: one picture or tile map.

The engine (numpy, numba, the solver kernels) and Pillow are imported by the commands that use
them, never when this module is imported: ``worldgen --version`` and the other commands do not
load the solver.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worldgen.cli import _gc
from worldgen.cli._io import (
    MAX_ATTEMPTS,
    MAX_BACKTRACKS,
    MAX_SCALE,
    check_output,
    check_png_size,
    check_range,
    error,
    failure_message,
    parse_size,
    write_json,
    write_png,
)
from worldgen.cli._terminal import spinner
from worldgen.errors import InputError

if TYPE_CHECKING:
    from worldgen.engine.generate import GenerateResult
    from worldgen.engine.solver import SolverBudget

__all__ = ["DEFAULT_SIZE", "run_demo", "run_generate", "run_tilesets"]

DEFAULT_SIZE = "48x48"
DEMO_TILESET, DEMO_SIZE, DEMO_SEED, DEMO_OUT = "terrain", "64x48", 1, "out/demo.png"
_SAMPLE_ONLY = ("N", "symmetry", "ground", "periodic_input")


def add_generate_arguments(gen: argparse.ArgumentParser) -> None:
    """The options of ``generate`` (imports the engine for its limits and heuristics)."""
    from worldgen.engine.patterns import MAX_N, MIN_N
    from worldgen.engine.solver import HEURISTICS, SolverBudget

    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--sample", metavar="PNG|NAME", help="overlapping model: a sample bitmap")
    source.add_argument("--tileset", metavar="FILE|NAME", help="tiled model: a .xml/.json file")
    gen.add_argument("--subset", metavar="NAME", help="use only this subset of the tileset")
    gen.add_argument("--N", type=int, metavar="N", help=f"pattern size {MIN_N}..{MAX_N} (3)")
    gen.add_argument("--symmetry", type=int, choices=(1, 2, 4, 8), help="sample variants (8)")
    gen.add_argument(
        "--periodic-input",
        action=argparse.BooleanOptionalAction,
        help="treat the sample as wrapping (default: yes)",
    )
    gen.add_argument(
        "--ground",
        action=argparse.BooleanOptionalAction,
        help="pin the sample's ground pattern to the bottom row",
    )
    _add_common(gen, size_default=DEFAULT_SIZE, seed_default=0)
    gen.add_argument("--out", required=True, metavar="FILE", help="output .png or .json")
    gen.add_argument("--periodic", action="store_true", help="make the output wrap around")
    gen.add_argument(
        "--heuristic",
        choices=tuple(HEURISTICS),
        default="entropy",
        help="cell choice: entropy (default), mrv or scanline",
    )
    gen.add_argument(
        "--max-attempts",
        type=int,
        default=SolverBudget.max_attempts,
        help=f"restarts with new seeds, 1..{MAX_ATTEMPTS} (%(default)s)",
    )
    gen.add_argument(
        "--max-backtracks",
        type=int,
        default=SolverBudget.max_backtracks,
        help=f"rollbacks per attempt, 0..{MAX_BACKTRACKS} (%(default)s)",
    )
    gen.set_defaults(handler=run_generate)


def _add_tilesets_arguments(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--json", action="store_true", help="print a JSON list instead")
    listing.set_defaults(handler=run_tilesets)


def _add_demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--out", default=DEMO_OUT, metavar="FILE", help="(%(default)s)")
    _add_common(demo, size_default=DEMO_SIZE, seed_default=DEMO_SEED)
    demo.set_defaults(handler=run_demo)


def _add_common(p: argparse.ArgumentParser, *, size_default: str, seed_default: int) -> None:
    p.add_argument("--size", default=size_default, metavar="WxH", help="(%(default)s)")
    p.add_argument("--seed", type=int, default=seed_default, help="(%(default)s)")
    p.add_argument(
        "--scale", type=int, metavar="K", help="PNG pixels per pixel (tiles 1, samples 4)"
    )
    p.add_argument("--stats", action="store_true", help="print a JSON stats line last")


def run_generate(args: argparse.Namespace) -> int:
    """Solve one sample or tileset and write the output; 0 solved, 1 failed (partial output)."""
    from worldgen.engine.solver import SolverBudget

    width, height = parse_size(args.size)
    budget = SolverBudget(
        max_attempts=check_range("--max-attempts", args.max_attempts, 1, MAX_ATTEMPTS),
        max_backtracks=check_range("--max-backtracks", args.max_backtracks, 0, MAX_BACKTRACKS),
    )
    if args.scale is not None:
        check_range("--scale", args.scale, 1, MAX_SCALE)
    if args.sample is not None:
        return _generate_sample(args, width, height, budget)
    return _generate_tiles(args, width, height, budget)


def _generate_sample(
    args: argparse.Namespace, width: int, height: int, budget: SolverBudget
) -> int:
    from worldgen import tilesets
    from worldgen.engine.generate import (
        OverlappingJob,
        build_overlapping,
        generate_overlapping,
        overlapping_json,
    )
    from worldgen.engine.patterns import MAX_N, MIN_N, wave_shape

    if args.subset is not None:
        raise InputError("--subset applies to --tileset only; drop it")
    entry = tilesets.lookup(args.sample, "overlapping")
    defaults: dict[str, Any] = dict(entry.defaults) if entry else {}
    chosen = {k: getattr(args, k) for k in _SAMPLE_ONLY if getattr(args, k) is not None}
    settings = {"N": 3, "symmetry": 8, "ground": False, "periodic_input": True}
    settings |= {k: defaults[k] for k in _SAMPLE_ONLY if k in defaults} | chosen
    N = check_range("--N", int(settings["N"]), MIN_N, MAX_N, "3 is typical")
    wave_shape(width, height, N, args.periodic)  # a bounded output must hold one pattern
    out = check_output(args.out, (".png", ".json"), "a sample's")
    scale = 4 if args.scale is None else args.scale
    if out.suffix.lower() == ".png":
        check_png_size(width, height, scale)
    job = OverlappingJob(
        sample=tilesets.resolve(args.sample, "overlapping"),
        N=N,
        symmetry=int(settings["symmetry"]),
        periodic_input=bool(settings["periodic_input"]),
        ground=bool(settings["ground"]),
    )
    started = time.perf_counter()
    with spinner(f"reading {job.sample.name}"):
        model = build_overlapping(job)
    load_s = time.perf_counter() - started
    jit_s = _warm_up()
    with spinner(f"solving {width}x{height} px ({model.size} patterns)"):
        gen = generate_overlapping(
            model,
            width,
            height,
            periodic=args.periodic,
            seed=args.seed,
            heuristic=args.heuristic,
            ground=job.ground,
            budget=budget,
        )

    def document() -> dict[str, Any]:
        return overlapping_json(model, gen.result.grid, width, height, args.periodic)

    return _finish(args, gen, out, scale, document, load_s, jit_s, ground=job.ground)


def _generate_tiles(args: argparse.Namespace, width: int, height: int, budget: SolverBudget) -> int:
    from worldgen import tilesets
    from worldgen.engine.generate import generate_tiled, tiled_json
    from worldgen.engine.tileset import load_tileset

    given = [f"--{k.replace('_', '-')}" for k in _SAMPLE_ONLY if getattr(args, k) is not None]
    if given:
        verb, it = ("applies", "it") if len(given) == 1 else ("apply", "them")
        raise InputError(f"{', '.join(given)} {verb} to --sample only; drop {it} for a tileset")
    entry = tilesets.lookup(args.tileset, "tiled")
    subset = (
        args.subset
        if args.subset is not None
        else (entry.defaults.get("subset") if entry else None)
    )
    out = check_output(args.out, (".png", ".json"), "a tileset's")
    png = out.suffix.lower() == ".png"
    scale = 1 if args.scale is None else args.scale
    path = tilesets.resolve(args.tileset, "tiled")
    started = time.perf_counter()
    with spinner(f"reading {path.name}"):
        tileset = load_tileset(path, subset, load_images=png)
    load_s = time.perf_counter() - started
    if png:
        check_png_size(width * tileset.tile_size, height * tileset.tile_size, scale)
    jit_s = _warm_up()
    with spinner(f"solving {width}x{height} tiles ({tileset.size} variants)"):
        gen = generate_tiled(
            tileset,
            width,
            height,
            periodic=args.periodic,
            seed=args.seed,
            heuristic=args.heuristic,
            budget=budget,
        )

    def document() -> dict[str, Any]:
        return tiled_json(tileset, gen.result.grid)

    return _finish(args, gen, out, scale, document, load_s, jit_s, ground=False)


def _warm_up() -> float:
    from worldgen.engine import solver

    with spinner("compiling the solver (first run only)"):
        seconds = solver.warm_up()
    _gc.start_work()  # the engine and its kernels are loaded
    return seconds


def _finish(
    args: argparse.Namespace,
    gen: GenerateResult,
    out: Path,
    scale: int,
    document: Callable[[], dict[str, Any]],
    load_s: float,
    jit_s: float,
    *,
    ground: bool,
) -> int:
    """Write the output (partial if the solve failed), report, and choose the exit code."""
    if out.suffix.lower() == ".png":
        write_png(out, gen.image, scale)
    else:
        write_json(out, document())
    unit = "px" if gen.kind == "overlapping" else "tiles"
    if gen.solved:
        print(
            f"wrote {out}: {gen.width}x{gen.height} {unit}, {gen.patterns} patterns, "
            f"seed {args.seed}, solved in {gen.result.solve_s:.2f} s"
        )
    else:
        error(failure_message(gen.result, ground))
        hole = "grey" if out.suffix.lower() == ".png" else "-1"
        print(
            f"worldgen: wrote the partial result to {out} (undecided parts are {hole})",
            file=sys.stderr,
        )
    if args.stats:
        stats = gen.stats() | {
            "setup_s": load_s + gen.setup_s,
            "load_s": load_s,
            "jit_warmup_s": jit_s,
            "seed": args.seed,
            "heuristic": args.heuristic,
            "out": str(out),
        }
        print(json.dumps(stats))
    return 0 if gen.solved else 1


def run_tilesets(args: argparse.Namespace) -> int:
    """List the bundled tilesets and samples with their tile or pattern counts."""
    from worldgen import tilesets
    from worldgen.engine.generate import OverlappingJob, build_overlapping
    from worldgen.engine.tileset import load_tileset

    rows = []
    for entry in tilesets.catalog():
        d = entry.defaults
        if entry.kind == "tiled":
            ts = load_tileset(entry.path, d.get("subset"), load_images=False)
            count = f"{len(set(ts.tile_of_variant))} tiles, {ts.size} variants"
        else:
            job = OverlappingJob(
                entry.path, d.get("N", 3), d.get("symmetry", 8), d.get("periodic_input", True)
            )
            count = f"{build_overlapping(job).size} patterns (N={job.N}, symmetry {job.symmetry})"
        rows.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "count": count,
                "path": str(entry.path),
                "description": entry.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    keys = ("name", "kind", "count", "path")
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    print("  ".join(k.upper().ljust(widths[k]) for k in keys) + "  DESCRIPTION")
    for r in rows:
        print("  ".join(r[k].ljust(widths[k]) for k in keys) + "  " + r["description"])
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``generate --tileset terrain`` with the demo's defaults, creating the output's folder."""
    parse_size(args.size)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create folder {str(out.parent)!r} ({exc.strerror}); choose another --out"
        ) from None
    argv = ["--tileset", DEMO_TILESET, f"--size={args.size}", "--seed", str(args.seed)]
    argv += ["--out", args.out]
    argv += ["--stats"] if args.stats else []
    argv += ["--scale", str(args.scale)] if args.scale is not None else []
    parser = argparse.ArgumentParser(prog="worldgen generate")
    add_generate_arguments(parser)
    return run_generate(parser.parse_args(argv))
