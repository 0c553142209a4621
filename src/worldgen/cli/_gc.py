"""The cyclic garbage collector in a command's process: paused while it starts, skipped at exit.

Importing numpy and numba and loading the solver kernels creates a few hundred thousand
long-lived objects. The collector would walk them again and again while they are created, and
once more when the interpreter exits, then free them one by one although the process is ending:
together about a quarter of the CPU time of ``worldgen generate`` or ``worldgen tile``
(``bench/startup.py``). So:

* :func:`paused` (around :func:`worldgen.cli.main`) switches the collector off; a command calls
  :func:`start_work` once its layers and models are loaded, which moves every object created so
  far to the permanent generation (``gc.freeze``: never scanned again) and switches the collector
  back on, so that long jobs (``region``, ``serve``) collect their own cycles as usual. Leaving
  :func:`paused` restores the collector as it was (``main`` also runs inside test processes),
  with every object it left in the oldest generation (not walked on the way out).
* :func:`freeze_at_exit` freezes every object when the interpreter exits, before its final
  collections. Nothing the commands leave behind needs a finaliser then: outputs are written and
  closed, servers and pools stopped, before ``main`` returns.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Run the block with the collector off until :func:`start_work`; restore it afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # Everything the command created is moved to the oldest generation without a walk
        # (freeze, then unfreeze): left in the youngest, with the collector back on, the next
        # allocation would walk it all (~15 ms after ``worldgen tile``, which never calls
        # start_work) just before the process exits.
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()
        else:
            gc.disable()


def start_work() -> None:
    """The start-up is over: freeze what exists and collect normally from now on."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@functools.cache
def freeze_at_exit() -> None:
    """Let the interpreter exit without walking and freeing the heap (registered once)."""
    atexit.register(gc.freeze)
