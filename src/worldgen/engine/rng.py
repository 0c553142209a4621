"""Deterministic integer hashing (splitmix64), the only source of randomness in worldgen.

Every random choice is ``mix(seed, purpose, ...)``: a pure function of integers, identical in
every process and with the JIT on or off. Never Python ``hash()``, never global RNG state.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

# Purposes: distinct tags so that two kinds of decision never share a stream.
PURPOSE_ATTEMPT = 1
PURPOSE_WORLD = 2


def splitmix64(x: int) -> int:
    """One splitmix64 finalisation step of a 64-bit integer (any int is reduced mod 2**64)."""
    z = (x + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mix(*values: int) -> int:
    """Hash a sequence of integers (negative ones included) into one 64-bit integer.

    Order matters: ``mix(a, b) != mix(b, a)`` in general.
    """
    h = 0x6A09E667F3BCC909
    for v in values:
        h = splitmix64(h ^ (v & MASK64))
    return h


def unit_float(h: int) -> float:
    """Map a 64-bit hash to a float in [0, 1) using its top 53 bits."""
    return (h >> 11) * (1.0 / (1 << 53))
