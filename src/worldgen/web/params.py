"""Parameter types shared by the routes.

:data:`CANONICAL_INT`: an integer that, when it arrives as text (a path or query parameter), is
written the one canonical way - an optional ``-``, then ``0`` or digits without a leading zero.
Pydantic's lax mode would also take ``0.0``, `` 1``, ``+1``, ``01`` and ``1_0``; two spellings of
one tile would be two cache keys and two answers, so they are refused (422).
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import BeforeValidator

__all__ = ["CANONICAL_INT", "CANONICAL_INT_PATTERN"]

CANONICAL_INT_PATTERN: Final = r"^(0|-?[1-9][0-9]{0,99})$"
_CANONICAL = re.compile(CANONICAL_INT_PATTERN)


def _canonical(value: object) -> object:
    if isinstance(value, str) and not _CANONICAL.fullmatch(value):
        raise ValueError("must be an integer written canonically (like 12 or -3)")
    return value


CANONICAL_INT: Final = BeforeValidator(_canonical)
"""Metadata for an ``int`` that refuses non-canonical text; put it *after* the constraints
(``Annotated[int, Field(ge=0, le=9), CANONICAL_INT]``), else pydantic writes the constraints
into the JSON schema as unknown keywords (``ge``) instead of ``minimum``/``maximum``."""
