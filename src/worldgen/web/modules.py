"""The browser's ES modules: which files a page's entry scripts import, so the page can name
them all at once (``<link rel="modulepreload">``) instead of letting the browser discover them
level by level (each level of imports one more round trip before the map starts).

Imports are read from the files themselves (static ``import ... from "./x.js"`` and bare
``import "./x.js"``; the app uses no dynamic ``import()``), once per process: the static files
do not change while it runs.
"""

from __future__ import annotations

import functools
import posixpath
import re
from pathlib import Path

__all__ = ["module_closure"]

_IMPORT = re.compile(r"""(?:\bfrom|^\s*import)\s*["'](\.{1,2}/[^"']+)["']""", re.MULTILINE)


def _imports(static_dir: Path, path: str) -> list[str]:
    """The static paths (relative to ``static_dir``) that the module ``path`` imports."""
    try:
        text = (static_dir / path).read_text(encoding="utf-8")
    except OSError:
        return []
    base = posixpath.dirname(path)
    return [posixpath.normpath(posixpath.join(base, found)) for found in _IMPORT.findall(text)]


@functools.lru_cache(maxsize=32)
def module_closure(static_dir: Path, *entries: str) -> tuple[str, ...]:
    """Every module that ``entries`` (paths under ``static_dir``, e.g. ``js/world.js``) import,
    directly or not, the entries included; sorted, each once."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        path = todo.pop()
        if path in seen or path.startswith("../"):
            continue
        seen.add(path)
        todo.extend(_imports(static_dir, path))
    return tuple(sorted(seen))
