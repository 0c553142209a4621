"""Two editors on two app instances edit one world at the same time: the server applies every
accepted operation in one order (ids 1..n, no gaps), both instances then serve byte-identical
tiles at three zooms, and the stored overlay equals the replayed log."""

from __future__ import annotations

import asyncio
import random

import httpx

from tests.accounts import sign_in
from tests.conftest import LiveServers
from tests.realtime.conftest import run
from worldgen.store.client import Store
from worldgen.store.edits import EditStore
from worldgen.web.edits import EditService, _op_of
from worldgen.web.generation import spec_for
from worldgen.world import edits as ed
from worldgen.world.api import build_world

OPS_EACH = 12


def _random_op(rng: random.Random) -> dict[str, object]:
    x, y = rng.randrange(-40, 40), rng.randrange(-40, 40)
    w, h = rng.randrange(2, 20), rng.randrange(2, 20)
    kind = rng.choice(["regenerate", "regenerate", "restore", "lock", "unlock"])
    return {"kind": kind, "rect": {"x": x, "y": y, "w": w, "h": h}}


def test_concurrent_editors_converge(live_servers: LiveServers) -> None:
    a, b = live_servers(2)

    async def main() -> None:
        async with (
            httpx.AsyncClient(base_url=a.http, timeout=60) as one,
            httpx.AsyncClient(base_url=b.http, timeout=60) as two,
        ):
            await sign_in(one)
            made = await one.post("/api/worlds", json={"name": "Busy", "tileset": "terrain"})
            wid = made.json()["id"]
            await sign_in(two)
            uid = (await two.get("/api/auth/me")).json()["id"]
            store: Store = a.app.state.store  # its client lives on the server's loop: a.call
            await asyncio.to_thread(a.call, store.members.add(wid, uid, "editor"))

            async def edit(client: httpx.AsyncClient, seed: int) -> list[int]:
                rng = random.Random(seed)
                done = []
                for _ in range(OPS_EACH):
                    got = await client.post(f"/api/worlds/{wid}/edits", json=_random_op(rng))
                    assert got.status_code in (201, 422), got.text
                    if got.status_code == 201:
                        done.append(got.json()["version"])
                return done

            first, second = await asyncio.gather(edit(one, 1), edit(two, 2))
            assert sorted(first + second) == list(range(1, len(first) + len(second) + 1))
            for z, x, y in ((2, -1, -1), (2, 0, 0), (0, -1, 0), (-2, -1, -1)):
                url = f"/tiles/{wid}/{z}/{x}/{y}.png"
                ra, rb = await one.get(url), await two.get(url)
                assert ra.status_code == rb.status_code == 200
                assert ra.content == rb.content
                assert ra.headers["etag"] == rb.headers["etag"]
            edits: EditStore = store.edits
            record = await asyncio.to_thread(a.call, store.worlds.get(wid))
            assert record is not None
            ops = [_op_of(r) for r in await asyncio.to_thread(a.call, edits.ops(wid))]
            replayed, _ = await asyncio.to_thread(ed.replay, build_world(spec_for(record)), ops)
            stored = await asyncio.to_thread(a.call, EditService.overlay(edits, wid))
            assert stored.same_content(replayed)
            assert stored.versions == replayed.versions

    run(main())
