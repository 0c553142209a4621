"""Edits survive a backup: dump → archive file → restore into another keyspace gives the same
log, markers and byte-identical tiles; an archive whose edits are out of order is refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.edits.conftest import Crew
from worldgen.settings import Settings
from worldgen.store.backup import BackupError, dump, load, read_archive, write_archive
from worldgen.store.client import connect
from worldgen.store.keys import Keys

pytestmark = pytest.mark.anyio

TILES = ["2/0/0", "1/0/0", "0/0/0", "-2/-1/-1", "-3/0/0", "-8/0/0"]


async def test_backup_and_restore_keep_edits(
    make_crew: Any, client_factory: ClientFactory, shared_valkey: str, tmp_path: Path
) -> None:
    c: Crew = await make_crew()
    rect = {"x": 0, "y": 0, "w": 24, "h": 24}
    for body in (
        {"kind": "regenerate", "rect": rect},
        {"kind": "lock", "rect": {"x": 2, "y": 2, "w": 3, "h": 3}},
        {"kind": "regenerate", "rect": {"x": 10, "y": 10, "w": 30, "h": 30}},
    ):
        assert (await c.editor.post(c.url("edits"), json=body)).status_code == 201
    assert (await c.editor.post(c.url("undo"))).status_code == 200
    marker = {"x": 5, "y": 6, "label": "Camp", "text": "by the lake"}
    assert (await c.editor.post(c.url("markers"), json=marker)).status_code == 201
    before = {t: (await c.viewer.get(f"/tiles/{c.world_id}/{t}.png")).content for t in TILES}
    log = (await c.viewer.get(c.url("edits"))).json()

    settings: Settings = c.owner.app.state.settings
    redis = connect(shared_valkey)
    try:
        report = await dump(redis, Keys(settings.key_prefix))
        archive_path = tmp_path / "backup.jsonl.gz"
        write_archive(archive_path, report.archive)
        archive = read_archive(archive_path)
        assert archive.edits is not None
        assert len([e for e in archive.edits if e.kind == "op"]) == 4
        restored = await client_factory()  # a fresh app on a fresh key prefix
        target: Settings = restored.app.state.settings
        result = await load(redis, Keys(target.key_prefix), archive, force=False)
        assert result.edit_ops == 4
    finally:
        await redis.aclose()
    for t, data in before.items():
        got = await restored.get(f"/tiles/{c.world_id}/{t}.png")
        assert got.status_code == 200
        assert got.content == data, t
    assert (await restored.get(c.url("edits"))).json() == log
    markers = (await restored.get(c.url("markers"))).json()
    assert [(m["label"], m["text"]) for m in markers] == [("Camp", "by the lake")]

    # an archive whose operations are out of order is refused before anything is written
    lines = [json.loads(x) for x in gzip.decompress(archive_path.read_bytes()).splitlines()]
    ops = [i for i, x in enumerate(lines) if x.get("record", {}).get("kind") == "op"]
    lines[ops[0]], lines[ops[1]] = lines[ops[1]], lines[ops[0]]
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b"\n".join(json.dumps(x).encode() for x in lines) + b"\n"))
    with pytest.raises(BackupError, match="out of order"):
        read_archive(bad)
