"""The ``worldgen region`` and ``worldgen tile`` commands.

``add_world_commands(subparsers)`` adds both to an ``argparse`` sub-parser set; each sets
``handler`` (``Callable[[argparse.Namespace], int]``) as a default, so the main CLI runs
``args.handler(args)`` and maps :class:`InputError` to exit code 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from worldgen.engine.tileset import Tileset, load_tileset
from worldgen.errors import InputError
from worldgen.world.blocks import ORDERS, World, WorldConfig, region_in_order
from worldgen.world.parallel import region_parallel
from worldgen.world.render import png_bytes, region_rgb, render_tile

MAX_REGION_SIDE = 4096
BUNDLED = Path(__file__).resolve().parent.parent / "tilesets"


def resolve_tileset(ref: str) -> Path:
    """A tileset file path, or the bundled tileset called ``ref``."""
    path = Path(ref)
    if path.suffix.lower() in (".xml", ".json"):
        if not path.is_file():
            raise InputError(f"tileset file {ref!r} does not exist")
        return path
    bundled = BUNDLED / ref / f"{ref}.xml"
    if ref.replace("_", "").replace("-", "").isalnum() and bundled.is_file():
        return bundled
    names = sorted(p.name for p in BUNDLED.iterdir() if (p / f"{p.name}.xml").is_file())
    raise InputError(
        f"unknown tileset {ref!r}: give a .xml/.json file or a bundled name ({', '.join(names)})"
    )


def _add_model_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tileset", help="tileset .xml/.json file or bundled name (e.g. terrain)")
    src.add_argument("--sample", help="sample bitmap for the overlapping model (not supported yet)")
    p.add_argument("--subset", default=None, help="tileset subset name")
    p.add_argument("--N", type=int, default=3, help="overlapping pattern size (with --sample)")
    p.add_argument("--symmetry", type=int, default=8, help="overlapping symmetry (with --sample)")
    p.add_argument("--seed", type=int, required=True, help="world seed")
    p.add_argument("--block-size", type=int, default=16, dest="S", help="block size S (even)")
    p.add_argument("--variants", type=int, default=4, dest="V", help="patch variants V")
    p.add_argument("--layers", type=int, default=2, help="refinement layers (0..3)")


def add_world_commands(subparsers: Any) -> None:
    """Add ``region`` and ``tile`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    reg = subparsers.add_parser("region", help="generate a window of the infinite world")
    _add_model_args(reg)
    reg.add_argument("--x", type=int, required=True)
    reg.add_argument("--y", type=int, required=True)
    reg.add_argument("--width", type=int, required=True)
    reg.add_argument("--height", type=int, required=True)
    reg.add_argument("--order", choices=ORDERS, default="rowmajor", help="block evaluation order")
    reg.add_argument("--workers", type=int, default=1, help="worker processes (spawn)")
    reg.add_argument("--out", required=True, help="output .json or .png")
    reg.set_defaults(handler=run_region)

    til = subparsers.add_parser("tile", help="render one 256-px map tile (z=0 opens the map)")
    _add_model_args(til)
    til.add_argument("--z", type=int, required=True)
    til.add_argument("--x", type=int, required=True)
    til.add_argument("--y", type=int, required=True)
    til.add_argument("--out", required=True, help="output .png")
    til.set_defaults(handler=run_tile)


def open_world(args: argparse.Namespace) -> tuple[World, Tileset]:
    """Build the world the arguments describe; InputError for anything unsupported."""
    if args.sample is not None:
        raise InputError(
            "sample worlds are not supported yet; use --tileset (a file or a bundled name)"
        )
    path = resolve_tileset(args.tileset)
    tileset = load_tileset(path, args.subset)
    config = WorldConfig(str(path), args.subset, args.seed, args.S, args.V, args.layers)
    world = World(tileset, args.seed, S=args.S, V=args.V, layers=args.layers, config=config)
    return world, tileset


def _suffix(out: str, allowed: tuple[str, ...]) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in allowed:
        raise InputError(f"--out must end with {' or '.join(allowed)}, got {out!r}")
    return suffix


def run_region(args: argparse.Namespace) -> int:
    """Write the window as JSON (tile names + row-major cells) or as a PNG picture."""
    suffix = _suffix(args.out, (".json", ".png"))
    if not (1 <= args.width <= MAX_REGION_SIDE and 1 <= args.height <= MAX_REGION_SIDE):
        raise InputError(f"--width and --height must be in 1..{MAX_REGION_SIDE}")
    if args.workers < 1 or args.workers > 64:
        raise InputError("--workers must be in 1..64")
    world, tileset = open_world(args)
    if args.workers > 1:
        grid = region_parallel(world, args.x, args.y, args.width, args.height, args.workers)
    else:
        grid = region_in_order(world, args.x, args.y, args.width, args.height, args.order)
    out = Path(args.out)
    if suffix == ".json":
        doc = {
            "x": args.x,
            "y": args.y,
            "width": args.width,
            "height": args.height,
            "tiles": list(tileset.variant_names),
            "cells": [int(v) for v in np.asarray(grid).reshape(-1)],
        }
        out.write_text(json.dumps(doc, separators=(",", ":")))
    else:
        out.write_bytes(png_bytes(region_rgb(world, grid)))
    return 0


def run_tile(args: argparse.Namespace) -> int:
    """Write map tile ``(z, x, y)`` as PNG."""
    _suffix(args.out, (".png",))
    world, _ = open_world(args)
    Path(args.out).write_bytes(render_tile(world, args.z, args.x, args.y))
    return 0
