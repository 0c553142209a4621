"""The public names of the package: every module imports, every ``__all__`` tells the truth, and
the public surface of the layers is pinned so that a rename or a removal shows up in review.

The pin is ``tests/data/public_names.json``: for each layer package (engine, world, jobs, store,
realtime, web) its public modules, and the ``__all__`` of each module that declares one. After a
deliberate change of the surface, rewrite it and review the diff::

    .venv/bin/python -m tests.test_public_names > tests/data/public_names.json
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

import worldgen

PINNED = Path(__file__).resolve().parent / "data" / "public_names.json"
LAYERS = ("engine", "world", "jobs", "store", "realtime", "web")
"""The packages whose public surface is pinned (``cli`` and the top-level modules are the
command line's and the settings' concern, checked by their own tests)."""


def module_names() -> list[str]:
    """Every module of ``worldgen``, packages included, in import order of their names."""
    found = ["worldgen"]
    for info in pkgutil.walk_packages(worldgen.__path__, prefix="worldgen."):
        if not info.name.endswith(".__main__"):  # running it is not importing it
            found.append(info.name)
    return sorted(found)


def exported(module: ModuleType) -> list[str] | None:
    """The module's ``__all__`` as a list, or None when it declares none."""
    names = getattr(module, "__all__", None)
    return None if names is None else list(names)


def is_public(name: str) -> bool:
    """True when no part of the dotted ``name`` starts with an underscore."""
    return not any(part.startswith("_") for part in name.split("."))


def surface() -> dict[str, dict[str, list[str] | None]]:
    """``{layer: {public module: its sorted __all__, or None}}`` for each of :data:`LAYERS`."""
    out: dict[str, dict[str, list[str] | None]] = {}
    for layer in LAYERS:
        prefix = f"worldgen.{layer}"
        modules: dict[str, list[str] | None] = {}
        for name in module_names():
            if (name == prefix or name.startswith(prefix + ".")) and is_public(name):
                names = exported(importlib.import_module(name))
                modules[name] = None if names is None else sorted(names)
        out[layer] = modules
    return out


@pytest.mark.parametrize("name", module_names())
def test_every_module_imports_and_its_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    names = exported(module)
    if names is None:
        return
    assert all(isinstance(n, str) for n in names), f"{name}.__all__ holds a non-string"
    assert len(set(names)) == len(names), f"{name}.__all__ lists a name twice"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}"


def test_the_public_surface_of_the_layers_is_the_pinned_one() -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    current = surface()
    changes: list[str] = []
    for layer in LAYERS:
        was, now = pinned.get(layer, {}), current[layer]
        changes += [f"module {m} is gone" for m in sorted(set(was) - set(now))]
        changes += [f"module {m} is new" for m in sorted(set(now) - set(was))]
        for module in sorted(set(was) & set(now)):
            old, new = set(was[module] or ()), set(now[module] or ())
            if (was[module] is None) != (now[module] is None) or old != new:
                changes.append(
                    f"{module}.__all__: removed {sorted(old - new)}, added {sorted(new - old)}"
                )
    assert changes == [], (
        "the public surface changed; if that is deliberate, rewrite the pin (see this module's "
        "docstring) and review its diff:\n" + "\n".join(changes)
    )


if __name__ == "__main__":
    sys.stdout.write(json.dumps(surface(), indent=1, sort_keys=True) + "\n")
