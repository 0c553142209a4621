"""Parameter types shared by the routes.

:data:`CANONICAL_INT`: an integer that, when it arrives as text (a path or query parameter), is
written the one canonical way - an optional ``-``, then ``0`` or digits without a leading zero.
Pydantic's lax mode would also take ``0.0``, `` 1``, ``+1``, ``01`` and ``1_0``; two spellings of
one tile would be two cache keys and two answers, so they are refused (422).

:data:`JSON_INT`: an integer in a JSON body as JSON Schema defines one: ``3`` or ``3.0``, never
``true``, ``"3"`` or ``3.5`` (pydantic's strict mode would refuse ``3.0``, its lax mode take
``true`` and ``"3"``).
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import BeforeValidator

__all__ = ["CANONICAL_INT", "CANONICAL_INT_PATTERN", "JSON_INT"]

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


def _json_integer(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a JSON integer")
        return int(value)
    return value


JSON_INT: Final = BeforeValidator(_json_integer)
"""Metadata for an ``int`` of a JSON body (see the module); after the constraints, as for
:data:`CANONICAL_INT`."""
