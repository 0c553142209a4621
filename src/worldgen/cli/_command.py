"""What a subcommand is to the parser: a name, its help, and a function that adds its options.

The options are added only for the command being run (see :func:`worldgen.cli.build_parser`):
adding them may import the layer the command drives (the engine's heuristics, the world's block
orders), and ``worldgen --version`` or ``worldgen serve`` should not pay for the solver.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

Handler = Callable[[argparse.Namespace], int]
"""Runs a parsed command and returns its exit code; raises InputError/SolveError to fail."""


@dataclass(frozen=True)
class Command:
    """One ``worldgen`` subcommand.

    ``add_arguments(parser)`` adds the options and sets ``handler`` (a :data:`Handler`) as a
    parser default. It may import what the options need; the module that declares the command
    must not, so that declaring every command stays cheap.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    description: str | None = None
