"""The one exception tree of worldgen.

Every error that worldgen raises on purpose derives from :class:`WorldgenError`::

    WorldgenError
    ├── InputError            the caller's input is wrong; the message says how to fix it
    │   ├── TilesetError      a tileset (XML or JSON) is unreadable, malformed or inconsistent
    │   ├── SampleError       a sample bitmap is unreadable or unusable
    │   └── ConstraintError   pins, bans, ground or weights are invalid or contradict each other
    └── SolveError            the solver gave up within its budget (carries the partial result)

Command-line mapping (done once, in ``worldgen.cli``): ``InputError`` → exit code 2,
``SolveError`` → exit code 1. Messages are short, name the offending input and never contain a
traceback.
"""

from __future__ import annotations


class WorldgenError(Exception):
    """Base class of every error raised on purpose by worldgen."""


class InputError(WorldgenError):
    """The input is wrong; the message says what is wrong and how to fix it."""


class TilesetError(InputError):
    """A tileset file is unreadable, malformed, or names something it does not define."""


class SampleError(InputError):
    """A sample bitmap is unreadable, too large, or has too many colours."""


class ConstraintError(InputError):
    """Solver constraints (pins, bans, ground, weights) are invalid or contradict each other."""


class SolveError(WorldgenError):
    """The solver found no solution within its budget."""
