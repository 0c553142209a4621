"""The layering rule of issue 10: only ``worldgen.store`` imports the Redis client library.

Everything else reaches Redis through :class:`~worldgen.store.client.Store` and catches
``store.client.StorageError``. Imports made for type checking only (``if TYPE_CHECKING:``) do
not run and are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "worldgen"


def _runtime_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every import outside ``if TYPE_CHECKING:`` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_no_module_outside_store_imports_redis() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(SRC / "store"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _runtime_imports(tree):
            if module == "redis" or module.startswith("redis."):
                offenders.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not offenders, "only worldgen.store may import redis:\n" + "\n".join(offenders)


def test_the_check_sees_an_offender() -> None:
    code = (
        "import json\n"
        "from redis.exceptions import RedisError\n"
        "if TYPE_CHECKING:\n"
        "    import redis\n"
    )
    assert _runtime_imports(ast.parse(code)) == [(1, "json"), (2, "redis.exceptions")]
