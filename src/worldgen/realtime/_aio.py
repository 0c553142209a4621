"""Asyncio helpers of the real-time layer."""

from __future__ import annotations

import asyncio


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
