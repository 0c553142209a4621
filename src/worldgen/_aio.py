"""Asyncio helpers shared by long-lived loops (the pub/sub listener, room pumps, writers)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Final

from worldgen.engine.rng import mix, unit_float

__all__ = ["backoff_delay", "raise_if_cancelling"]

PURPOSE_JITTER: Final = 0x4A495454
"""The :func:`~worldgen.engine.rng.mix` purpose of back-off jitter."""


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` if the current task was asked to stop.

    On Python 3.11, ``asyncio.wait_for`` (which redis-py uses for socket writes) can swallow a
    cancellation that arrives just as the awaited operation finishes; the task then goes on as
    if nothing happened and may wait forever. Long-lived loops call this at the top of every
    iteration so a swallowed cancellation still stops them.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def backoff_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): exponential, capped, half of it jittered.

    The jitter spreads the reconnects of many instances after one Redis restart; it needs no
    reproducibility, so it hashes the process id and the clock (with the project's one source of
    randomness, :func:`~worldgen.engine.rng.mix`: no global RNG anywhere).
    """
    ceiling = min(cap_s, base_s * 2 ** min(attempt - 1, 30))
    jitter = unit_float(mix(PURPOSE_JITTER, attempt, os.getpid(), time.monotonic_ns()))
    return float(ceiling / 2 + jitter * ceiling / 2)
