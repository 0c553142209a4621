"""Slow, obviously-correct reference implementations that the fast engine is tested against."""

from tests.reference.naive_wfc import (
    agrees,
    all_solutions_count,
    invalid_pairs,
    is_valid_tiling,
    naive_allowed,
    naive_patterns,
    solve_reference,
    windows,
    windows_are_patterns,
)

__all__ = [
    "agrees",
    "all_solutions_count",
    "invalid_pairs",
    "is_valid_tiling",
    "naive_allowed",
    "naive_patterns",
    "solve_reference",
    "windows",
    "windows_are_patterns",
]
