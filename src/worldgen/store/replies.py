"""Decoding Redis replies: the client does not decode responses, so strings arrive as bytes."""

from __future__ import annotations


def text(value: object) -> str:
    """A key, member or value read from Redis as text (bytes are UTF-8; str passes through).

    Raises ``TypeError`` for anything else (an integer or a nested reply where a string was
    expected), so a schema mismatch fails loudly instead of turning into ``"None"``.
    """
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string reply from Redis, got {type(value).__name__}")
