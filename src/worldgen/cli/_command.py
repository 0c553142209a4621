"""What a subcommand is to the parser: a name, its help, and where its options are declared.

Every command is listed by ``worldgen --help``, but only the command being run has its options
added (see :func:`worldgen.cli.build_parser`), and only then is the module that declares them
imported: ``worldgen tile`` never imports the modules of ``backup`` or ``serve``, and
``worldgen --version`` imports none. Adding the options may import the layer the command drives
(the engine's heuristics, the world's block orders); importing the declaring module must not.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import NamedTuple

Handler = Callable[[argparse.Namespace], int]
"""Runs a parsed command and returns its exit code; raises InputError/SolveError to fail."""


class Command(NamedTuple):
    """One ``worldgen`` subcommand.

    ``module`` is the module of :mod:`worldgen.cli` that runs it, and ``adder`` the name of that
    module's function that adds the command's options to its parser and sets ``handler`` (a
    :data:`Handler`) as a parser default. (A named tuple, not a dataclass: ``dataclasses``
    imports ``inspect``, 10 ms of ``worldgen --version``.)
    """

    name: str
    help: str
    module: str
    adder: str
    description: str | None = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Import the command's module and add its options to ``parser``."""
        declared = importlib.import_module(f"worldgen.cli.{self.module}")
        adder: Callable[[argparse.ArgumentParser], None] = getattr(declared, self.adder)
        adder(parser)
