"""The operations docs keep up with the code: every key and every setting is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from worldgen.settings import Settings
from worldgen.store.keys import Keys

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_redis_schema_lists_every_key() -> None:
    text = (DOCS / "redis-schema.md").read_text()
    names = [
        name
        for name, member in inspect.getmembers(Keys, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert names
    missing = [n for n in names if f"(`{n}`)" not in text and n != "pattern_world"]
    assert not missing, f"keys.py methods not in docs/redis-schema.md: {missing}"


def test_operations_lists_every_setting() -> None:
    text = (DOCS / "operations.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    missing = sorted(set(Settings.model_fields) - rows)
    assert not missing, f"settings not in the table of docs/operations.md: {missing}"
    for name in Settings.model_fields:
        env = "REDIS_URL" if name == "redis_url" else f"WORLDGEN_{name.upper()}"
        assert f"`{env}`" in text, env
