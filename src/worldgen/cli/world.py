"""``worldgen region`` and ``worldgen tile``: a window or a map tile of the infinite world.

The world comes from a :class:`~worldgen.world.spec.WorldSpec` (``--tileset`` or ``--sample``, a
bundled name or a file). The world package is imported only when one of these commands runs, and
``tile`` never loads the process pool.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from worldgen.cli import _gc
from worldgen.cli._terminal import progress_bar
from worldgen.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import numpy.typing as npt
    from redis.asyncio import Redis

    from worldgen.store.keys import Keys
    from worldgen.world.blocks import World
    from worldgen.world.spec import WorldSpec

__all__ = ["open_world", "run_region", "run_tile", "spec_from_args"]


def _add_model_args(p: argparse.ArgumentParser, *, stored: bool = False) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tileset", help="tileset .xml/.json file or bundled name (e.g. terrain)")
    src.add_argument("--sample", help="sample PNG or bundled sample name (e.g. lakes)")
    if stored:
        src.add_argument(
            "--world",
            metavar="ID",
            help="a stored world (of `worldgen serve`, or restored from a backup): its model "
            "and seed, with its edits; Redis as for `worldgen backup` (--redis-url, --data-dir)",
        )
    p.add_argument("--subset", default=None, help="tileset subset name")
    p.add_argument(
        "--N",
        type=int,
        default=None,
        help="pattern size 2..5 (with --sample; default the catalog's, else 3)",
    )
    p.add_argument(
        "--symmetry",
        type=int,
        default=None,
        help="1, 2, 4 or 8 (with --sample; default the catalog's, else 8)",
    )
    p.add_argument("--ground", action=argparse.BooleanOptionalAction, default=None,
                   help="a side view with the sample's ground row at y = 0 (with --sample; "
                   "default the catalog's, e.g. on for flowers)")  # fmt: skip
    p.add_argument("--seed", type=int, required=not stored,
                   help="world seed" + (" (not with --world)" if stored else ""))  # fmt: skip
    p.add_argument("--block-size", type=int, default=None, dest="S",
                   help="block size S (even; default the catalog's, else 32)")  # fmt: skip
    p.add_argument("--variants", type=int, default=4, dest="V", help="patch variants V")
    p.add_argument("--layers", type=int, default=2, help="refinement layers (0..3)")


def _add_region_arguments(reg: argparse.ArgumentParser) -> None:
    from worldgen.cli.backup import _add_target_args
    from worldgen.world.blocks import ORDERS

    _add_model_args(reg, stored=True)
    _add_target_args(reg)
    reg.add_argument("--x", type=int, required=True)
    reg.add_argument("--y", type=int, required=True)
    reg.add_argument("--width", type=int, required=True)
    reg.add_argument("--height", type=int, required=True)
    reg.add_argument("--order", choices=ORDERS, default="rowmajor", help="block evaluation order")
    reg.add_argument("--workers", type=int, default=1, help="worker processes (spawn)")
    reg.add_argument("--out", required=True, help="output .json or .png")
    reg.set_defaults(handler=run_region)


def _add_tile_arguments(til: argparse.ArgumentParser) -> None:
    _add_model_args(til)
    til.add_argument("--z", type=int, required=True)
    til.add_argument("--x", type=int, required=True)
    til.add_argument("--y", type=int, required=True)
    til.add_argument("--out", required=True, help="output .png")
    til.set_defaults(handler=run_tile)


def spec_from_args(args: argparse.Namespace) -> WorldSpec:
    """The :class:`WorldSpec` the arguments describe (a file path is made absolute for workers)."""
    from worldgen import tilesets
    from worldgen.world.spec import KIND, Source, WorldSpec

    source: Source = "sample" if args.sample is not None else "tileset"
    name: str = args.sample if args.sample is not None else args.tileset
    if tilesets.lookup(name, KIND[source]) is None and Path(name).is_file():
        name = str(Path(name).resolve())
    # a bundled name starts from its catalog settings (the map's world), a file from the defaults
    spec = WorldSpec.of_kind(KIND[source], name, args.seed)
    given = {
        "subset": args.subset, "N": args.N, "symmetry": args.symmetry, "ground": args.ground,
        "S": args.S,
    }  # fmt: skip
    chosen = {field: value for field, value in given.items() if value is not None}
    return replace(spec, **chosen, V=args.V, layers=args.layers)


def open_world(args: argparse.Namespace) -> World:
    """Build the world the arguments describe; InputError for anything invalid."""
    from worldgen.world.api import build_world

    return build_world(spec_from_args(args), allow_files=True)


def _suffix(out: str, allowed: tuple[str, ...]) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in allowed:
        raise InputError(f"--out must end with {' or '.join(allowed)}, got {out!r}")
    return suffix


def run_region(args: argparse.Namespace) -> int:
    """Write the window as JSON (variant labels + row-major cells) or as a PNG picture."""
    from worldgen.world.api import region_document
    from worldgen.world.blocks import region_in_order
    from worldgen.world.pool import MAX_WORKERS, region_parallel
    from worldgen.world.render import png_bytes, region_rgb
    from worldgen.world.spec import MAX_REGION_SIDE

    suffix = _suffix(args.out, (".json", ".png"))
    for option, value in (("--width", args.width), ("--height", args.height)):
        if not 1 <= value <= MAX_REGION_SIDE:
            raise InputError(f"{option} must be in 1..{MAX_REGION_SIDE}, got {value}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise InputError(f"--workers must be in 1..{MAX_WORKERS}, got {args.workers}")
    if args.world is None and args.seed is None:
        raise InputError("--seed is required (or --world ID for a stored world)")
    x, y, w, h = args.x, args.y, args.width, args.height
    edited = _stored_edits(args, x, y, w, h) if args.world is not None else None
    world = open_world(args) if edited is None else _build(edited[0])
    _gc.start_work()  # the world's layers and model are loaded
    with progress_bar(len(world.top_blocks(x, y, w, h))) as advance:
        if args.workers > 1:
            grid = region_parallel(world, x, y, w, h, args.workers, advance)
        else:
            grid = region_in_order(world, x, y, w, h, args.order, advance)
    if edited is not None:
        grid = edited[1](grid)
    out = Path(args.out)
    if suffix == ".json":
        out.write_text(json.dumps(region_document(world, x, y, grid), separators=(",", ":")))
    else:
        out.write_bytes(png_bytes(region_rgb(world, grid, origin=(x, y))))
    return 0


def _build(spec: WorldSpec) -> World:
    from worldgen.world.api import build_world

    return build_world(spec)


def _stored_edits(
    args: argparse.Namespace, x: int, y: int, w: int, h: int
) -> tuple[WorldSpec, Callable[[npt.NDArray[np.integer]], npt.NDArray[np.int32]]]:
    """The spec of the stored world ``args.world`` and the function that puts its edits on the
    window's generated cells (the overlay read now, as the web app's regions and tiles read it)."""
    from worldgen.cli.backup import _run
    from worldgen.jobs.export import EditedContent
    from worldgen.store.edits import EditStore
    from worldgen.store.worlds import WorldRepo
    from worldgen.web.generation import spec_for
    from worldgen.world.edits import Overlay, Rect, apply_overlay

    if args.seed is not None:
        raise InputError("--seed comes from the stored world; leave it out with --world")
    rect = Rect(x, y, w, h)

    async def read(redis: Redis, keys: Keys) -> tuple[WorldSpec, Overlay]:
        record = await WorldRepo(redis, keys).get(args.world)
        if record is None:
            raise InputError(f"no world {args.world!r} in this Redis (check --key-prefix)")
        return spec_for(record), await EditedContent.overlay(
            EditStore(redis, keys), record.id, rect
        )

    spec, overlay = _run(args, read, create=False)
    values, _ = overlay.window(rect)
    return spec, lambda grid: apply_overlay(grid, values)


def run_tile(args: argparse.Namespace) -> int:
    """Write map tile ``(z, x, y)`` as PNG."""
    from worldgen.world.api import tile_png

    _suffix(args.out, (".png",))
    world = open_world(args)
    Path(args.out).write_bytes(tile_png(world, args.z, args.x, args.y))
    return 0
