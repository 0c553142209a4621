"""Feedback on a terminal while a command works: a spinner and a progress bar, on stderr.

Both show only when stderr is a terminal (so captured output and pipes stay clean), and rich is
imported only then: a command run from a script never pays for it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

PROGRESS_MIN_BLOCKS = 64
"""A progress bar appears (on a terminal) for jobs of more top-layer blocks than this."""


@contextlib.contextmanager
def spinner(message: str) -> Iterator[None]:
    """A rich status spinner on stderr while the block runs, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


@contextlib.contextmanager
def progress_bar(total: int) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for ``total`` blocks, only on a terminal and for big jobs;
    yields the ``advance(n)`` callback, or None when no bar is shown."""
    if total <= PROGRESS_MIN_BLOCKS or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("blocks", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("blocks", total=total)
        yield lambda n: bar.advance(task, n)
