"""The ``worldgen`` command: argument parsing and dispatch (documented in ``docs/cli.md``).

One module per group of commands: :mod:`.generate` (``generate``, ``tilesets``, ``demo``),
:mod:`.world` (``region``, ``tile``), :mod:`.serve` (``serve``), :mod:`.backup` (``backup``,
``restore``), :mod:`.worker` (``worker``); ``_io`` holds the input checks and output files,
``_terminal`` the spinner and the progress bar. No layer package (engine, world, store, web,
realtime) knows about the command line.

Start-up is part of the contract: importing this package imports no numpy, numba, Pillow,
FastAPI, pydantic, Redis or rich, nor any command's module. :data:`COMMANDS` lists every command
with its help; :func:`main` imports the module of the command being run only and adds its options
only (adding them may import its layer), so ``worldgen --version`` costs an interpreter start,
``worldgen tile`` never imports the modules of ``serve`` or ``backup``, and ``worldgen serve``
never loads the solver. The garbage collector is paused while a command starts and skipped at
exit (``_gc``). OpenBLAS, which numpy loads, starts a thread per core that spins for ~0.1 s of
CPU although worldgen never multiplies a matrix large enough to use it (its arithmetic is integer,
or vectors of a few numbers); :func:`main` therefore sets ``OPENBLAS_NUM_THREADS=1`` unless it is
set (before numpy is imported: the command's process and the processes it starts), which changes
no result.

Exit codes are decided here and nowhere else: 0 solved, 1 no solution within the budget
(:class:`~worldgen.errors.SolveError` or a failed result), 2 bad input
(:class:`~worldgen.errors.InputError`, and argparse's own usage errors), 3 an unexpected internal
error. Messages go to stderr as ``worldgen: error: ...``; stdout carries only results (and, with
``--stats``, a JSON object as its last line).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import cast

from worldgen import __version__
from worldgen.cli import _gc
from worldgen.cli._command import Command, Handler
from worldgen.errors import InputError, SolveError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: tuple[Command, ...] = (
    Command("generate", "generate one picture or tile map", "generate", "add_generate_arguments"),
    Command(
        "tilesets", "list the bundled tilesets and samples", "generate", "_add_tilesets_arguments"
    ),
    Command(
        "demo", "generate a map from the bundled terrain tileset", "generate", "_add_demo_arguments"
    ),
    Command("region", "generate a window of the infinite world", "world", "_add_region_arguments"),
    Command(
        "tile", "render one 256-px map tile (z=0 opens the map)", "world", "_add_tile_arguments"
    ),
    Command(
        "serve",
        "run the web app (an embedded Valkey server unless REDIS_URL is set)",
        "serve",
        "_add_serve_arguments",
        description="Serve the map and the API. Settings also come from WORLDGEN_* variables "
        "and REDIS_URL (see docs/operations.md); flags win.",
    ),
    Command(
        "backup",
        "write every world, account, membership and chat message to a backup file "
        "(see docs/operations.md)",
        "backup",
        "_add_backup_arguments",
    ),
    Command(
        "restore",
        "load a backup file (worlds, accounts, members, chat)",
        "backup",
        "_add_restore_arguments",
    ),
    Command(
        "worker",
        "run background jobs (exports, pre-rendering) from the job queue on Redis",
        "worker",
        "_add_worker_arguments",
        description="Run Dramatiq workers for worldgen's job queue: WORLDGEN_BROKER_URL, else "
        "REDIS_URL, with WORLDGEN_KEY_PREFIX (see docs/operations.md).",
    ),
)
"""Every subcommand, in the order ``worldgen --help`` lists them (its module is imported only
when it runs)."""

# argparse takes "-3x3" for an option; such values are joined to their option ("--size=-3x3")
# so that the size check can say what is wrong with them.
_DASH_VALUE = re.compile(r"-[0-9]")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand is listed, but only ``command``'s options are added
    (all of them when ``command`` is None, which imports every layer)."""
    parser = argparse.ArgumentParser(
        prog="worldgen", description="Wave Function Collapse generator (see docs/cli.md)."
    )
    parser.add_argument("--version", action="version", version=f"worldgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for spec in COMMANDS:
        p = sub.add_parser(spec.name, help=spec.help, description=spec.description)
        if command is None or command == spec.name:
            spec.add_arguments(p)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (the top-level
    options, ``-h`` and ``--version``, take no value)."""
    return next((token for token in argv if not token.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    joined: list[str] = []
    for token in args_in:
        if joined and joined[-1] == "--size" and _DASH_VALUE.match(token):
            joined[-1] = f"--size={token}"
        else:
            joined.append(token)
    if "numpy" not in sys.modules:  # see the module docstring; a user's setting wins
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _gc.freeze_at_exit()
    with _gc.paused():
        return _run(joined)


def _run(argv: list[str]) -> int:
    try:
        args = build_parser(_command_of(argv) or "").parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else 2
    handler = cast(Handler, args.handler)
    from worldgen.cli._io import error  # after parsing: --version and --help need none of it

    try:
        return handler(args)
    except InputError as exc:
        error(str(exc))
        return 2
    except SolveError as exc:
        error(str(exc))
        return 1
    except MemoryError:
        error("out of memory; use a smaller --size")
        return 2
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:  # a bug: still one line, never a traceback
        error(f"internal error ({type(exc).__name__}: {exc}); please report it")
        return 3
