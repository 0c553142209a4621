"""Edit benchmark (issue 14): from an editor's request to the other client's updated tile.

Starts one Valkey and two app instances as a deployment runs them (``worldgen serve`` with
``REDIS_URL``, child processes; helpers from :mod:`bench.realtime`). An editor on instance A
regenerates rectangles of 16², 64² and 256² cells (each at a fresh place), and a viewer connected
to instance B measures, per edit, the time from the editor's ``POST`` to

* ``event``: the ``edit`` frame arriving on B's WebSocket, and
* ``tile``: B's updated tile (the zoom-0 tile at the rectangle's centre, asked for with the new
  version, as the page does) fully received.

It also times ``undo`` the same way (request to B's updated tile). The first edit of an instance
loads the world and the solver: one untimed warm-up edit runs first. While each edit runs, a probe
asks instance A (the one solving it) for ``/healthz`` every 10 ms: ``lag`` is how long those
answers took, i.e. how responsive A's event loop stayed during the edit; ``B lag max`` the same
for instance B while it draws the edited tile.

``--crowd S``: 20 editors (half on each instance) each send one edit a second for S seconds on
one 192² area, with the version they last saw; then it counts answers by status, checks that the
log holds exactly the accepted operations (ids 1..n, none lost) and that both instances serve
byte-identical tiles over the area at zooms 2, 0 and -2. Never asserts; prints a table and writes
``bench/results/edits-<timestamp>.json``.
Run: ``.venv/bin/python -m bench.edits [--reps N] [--crowd S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.realtime import RESULTS, ROOT, App, make_sessions, percentile, start_app, stop_app
from worldgen.store.client import connect as redis_connect
from worldgen.store.embedded import EmbeddedValkey
from worldgen.store.keys import Keys
from worldgen.store.members import MemberRepo

TARGETS_P95_MS = {16: 300.0, 64: 500.0, 256: 2000.0, 0: 300.0}
"""The issue's targets (0: undo)."""
TILE_CELLS_Z0 = 64


async def _viewer(app: App, world_id: str, cookie: str) -> ClientConnection:
    ws = await connect(app.ws(world_id), additional_headers={"Cookie": cookie})
    await ws.send(json.dumps({"type": "hello"}))
    while json.loads(await ws.recv())["type"] != "welcome":
        pass
    return ws


async def _until_edit(ws: ClientConnection, version: int) -> None:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if frame.get("type") == "edit" and frame.get("version") == version:
            return


async def _probe(client: httpx.AsyncClient, stop: asyncio.Event, lags: list[float]) -> None:
    """``/healthz`` of the editing instance every 10 ms until ``stop``: each answer's time."""
    while not stop.is_set():
        started = time.perf_counter()
        (await client.get("/healthz")).raise_for_status()
        lags.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.01)


async def _one(
    editor: httpx.AsyncClient,
    viewer: httpx.AsyncClient,
    ws: ClientConnection,
    world_id: str,
    path: str,
    body: dict[str, Any] | None,
    centre: tuple[int, int],
    lags: list[float] | None = None,
    lags_b: list[float] | None = None,
) -> tuple[float, float]:
    await ws.send('{"type":"heartbeat"}')  # the viewer stays present (a run may pass 25 s)
    started = time.perf_counter()
    async with _probing(editor, lags):
        got = await editor.post(f"/api/worlds/{world_id}/{path}", json=body)
    got.raise_for_status()
    version = got.json()["version"]
    await _until_edit(ws, version)
    event = time.perf_counter()
    tx, ty = centre[0] // TILE_CELLS_Z0, centre[1] // TILE_CELLS_Z0
    async with _probing(viewer, lags_b):  # B draws the edited tile in a thread
        tile = await viewer.get(f"/tiles/{world_id}/0/{tx}/{ty}.png?v={version}")
    tile.raise_for_status()
    done = time.perf_counter()
    return (event - started) * 1000, (done - started) * 1000


@asynccontextmanager
async def _probing(app: httpx.AsyncClient, lags: list[float] | None) -> AsyncIterator[None]:
    """:func:`_probe` of ``app``'s instance while the block runs (nothing when ``lags`` is None)."""
    if lags is None:
        yield
        return
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=str(app.base_url), timeout=120) as client:
        probe = asyncio.create_task(_probe(client, stop, lags))
        try:
            yield
        finally:
            stop.set()
            await probe


async def run(apps: list[App], url: str, reps: int) -> list[dict[str, Any]]:
    editor_cookie, viewer_cookie = await make_sessions(url, 2)
    results: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=apps[0].http, timeout=120) as editor,
        httpx.AsyncClient(base_url=apps[1].http, timeout=120) as viewer,
    ):
        editor.headers["Cookie"] = editor_cookie
        viewer.headers["Cookie"] = viewer_cookie
        made = await editor.post("/api/worlds", json={"name": "Bench", "tileset": "terrain"})
        made.raise_for_status()
        world_id = made.json()["id"]
        ws = await _viewer(apps[1], world_id, viewer_cookie)
        try:
            warm = {"kind": "regenerate", "rect": {"x": -500, "y": -500, "w": 16, "h": 16}}
            await _one(editor, viewer, ws, world_id, "edits", warm, (-500, -500))
            place = 0
            for side in (16, 64, 256):
                events, tiles = [], []
                lags: list[float] = []
                lags_b: list[float] = []
                for _ in range(reps):
                    place += 1
                    x, y = place * 300, (place % 7) * 300
                    body = {"kind": "regenerate", "rect": {"x": x, "y": y, "w": side, "h": side}}
                    centre = (x + side // 2, y + side // 2)
                    e, t = await _one(
                        editor, viewer, ws, world_id, "edits", body, centre, lags, lags_b
                    )
                    events.append(e)
                    tiles.append(t)
                results.append(_row(f"regenerate {side}²", side, events, tiles, lags, lags_b))
                print(results[-1]["name"], "done", flush=True)
            events, tiles = [], []
            lags, lags_b = [], []
            for _ in range(reps):  # each undo reverts one of the regenerates above, newest first
                e, t = await _one(editor, viewer, ws, world_id, "undo", None, (0, 0), lags, lags_b)
                events.append(e)
                tiles.append(t)
            results.append(_row("undo", 0, events, tiles, lags, lags_b))
        finally:
            await ws.close()
    return results


CROWD = 20
AREA = 192


async def crowd(apps: list[App], url: str, seconds: float) -> dict[str, Any]:
    """20 editors at 1 op/s for ``seconds``: statuses, lost operations, converged tiles."""
    cookies = await make_sessions(url, CROWD)
    clients = [
        httpx.AsyncClient(base_url=apps[i % 2].http, timeout=120, headers={"Cookie": c})
        for i, c in enumerate(cookies)
    ]
    try:
        made = await clients[0].post("/api/worlds", json={"name": "Crowd", "tileset": "terrain"})
        made.raise_for_status()
        world_id = made.json()["id"]
        redis = redis_connect(url)
        try:
            members = MemberRepo(redis, Keys())
            for client in clients[1:]:
                me = (await client.get("/api/auth/me")).json()["id"]
                await members.add(world_id, me, "editor")
        finally:
            await redis.aclose()
        statuses: Counter[int] = Counter()
        accepted: list[int] = []

        async def editor(index: int, client: httpx.AsyncClient) -> None:
            rng = random.Random(index)  # noqa: S311  load, not secrets
            seen = 0
            deadline = time.monotonic() + seconds
            await asyncio.sleep(index / CROWD)  # spread the starts over one second
            while time.monotonic() < deadline:
                tick = time.monotonic()
                w, h = rng.randrange(4, 24), rng.randrange(4, 24)
                rect = {"x": rng.randrange(0, AREA - w), "y": rng.randrange(0, AREA - h)}
                kind = rng.choice(["regenerate", "regenerate", "regenerate", "lock", "unlock"])
                body = {"kind": kind, "rect": {**rect, "w": w, "h": h}, "version": seen}
                got = await client.post(f"/api/worlds/{world_id}/edits", json=body)
                statuses[got.status_code] += 1
                if got.status_code == 201:
                    accepted.append(got.json()["version"])
                    seen = got.json()["version"]
                elif got.status_code == 409:
                    seen = (await client.get(f"/api/worlds/{world_id}/edits?after={seen}")).json()[
                        "version"
                    ]
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

        started = time.monotonic()
        await asyncio.gather(*(editor(i, c) for i, c in enumerate(clients)))
        elapsed = time.monotonic() - started
        ids: list[int] = []
        while True:  # the log, page by page
            page = (await clients[0].get(f"/api/worlds/{world_id}/edits?after={len(ids)}")).json()
            ids += [op["id"] for op in page["ops"]]
            if not page["ops"]:
                break
        lost = sorted(set(accepted) - set(ids))
        tiles_differ = 0
        tiles_checked = 0
        for z, n in ((2, 16), (0, 64), (-2, 256)):
            for ty in range(0, AREA // n + 1):
                for tx in range(0, AREA // n + 1):
                    url_ = f"/tiles/{world_id}/{z}/{tx}/{ty}.png"
                    one, two = await clients[0].get(url_), await clients[1].get(url_)
                    tiles_checked += 1
                    tiles_differ += int(one.content != two.content)
        return {
            "editors": CROWD,
            "seconds": round(elapsed, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "accepted": len(accepted),
            "log_ops": len(ids),
            "ids_contiguous": ids == list(range(1, len(ids) + 1)),
            "lost": lost,
            "tiles_checked": tiles_checked,
            "tiles_differ": tiles_differ,
        }
    finally:
        for client in clients:
            await client.aclose()


def _row(
    name: str,
    side: int,
    events: list[float],
    tiles: list[float],
    lags: list[float],
    lags_b: list[float],
) -> dict[str, Any]:
    return {
        "name": name,
        "n": len(tiles),
        "event_p50_ms": round(percentile(events, 50), 1),
        "event_p95_ms": round(percentile(events, 95), 1),
        "tile_p50_ms": round(percentile(tiles, 50), 1),
        "tile_p95_ms": round(percentile(tiles, 95), 1),
        "target_p95_ms": TARGETS_P95_MS[side],
        "lag_p95_ms": round(percentile(lags, 95), 1) if lags else None,
        "lag_max_ms": round(max(lags), 1) if lags else None,
        "lag_b_max_ms": round(max(lags_b), 1) if lags_b else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=10, help="edits per size (10)")
    parser.add_argument("--crowd", type=float, default=0.0, help="seconds of 20 editors (off)")
    args = parser.parse_args(argv)
    crowd_result: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="wg-bench-edits-") as tmp:
        tmpdir = Path(tmp)
        valkey = EmbeddedValkey(tmpdir / "valkey")
        url = valkey.start()
        apps: list[App] = []
        try:
            apps = [start_app(url, tmpdir / f"app{i}", tmpdir / f"app{i}.log") for i in range(2)]
            results = asyncio.run(run(apps, url, args.reps)) if args.reps else []
            if args.crowd:
                crowd_result = asyncio.run(crowd(apps, url, args.crowd))
        finally:
            for app in apps:
                stop_app(app)
            valkey.stop()
    print(
        f"\nedit benchmark: 2 app instances (1 worker each) + 1 Valkey on {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}); request -> other instance's client"
    )
    head = (
        f"{'edit':16} {'n':>3} {'event p50':>10} {'event p95':>10} {'tile p50':>9} {'tile p95':>9}"
    )
    print(head + f" {'target p95':>11} {'lag p95':>8} {'lag max':>8} {'B lag max':>10}")
    for r in results:
        print(
            f"{r['name']:16} {r['n']:>3} {r['event_p50_ms']:>10} {r['event_p95_ms']:>10} "
            f"{r['tile_p50_ms']:>9} {r['tile_p95_ms']:>9} {r['target_p95_ms']:>11} "
            f"{r['lag_p95_ms']:>8} {r['lag_max_ms']:>8} {r['lag_b_max_ms']:>10}"
        )
    if crowd_result is not None:
        print(f"\ncrowd: {json.dumps(crowd_result)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"edits-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    payload = {"machine": {"cpus": os.cpu_count()}, "results": results, "crowd": crowd_result}
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nwritten: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
