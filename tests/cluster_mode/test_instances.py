"""Three real ``worldgen serve`` instances (two of them with a job worker) on one real Valkey
Cluster: a client spread across the instances chats, pings, edits, sees who is here and loads
tiles, and queues a background job that a worker of another instance runs; everything converges,
and it keeps working when one instance is killed with SIGKILL.

Nothing here is shared between the instances except Redis: accounts and sessions (a cookie
from one instance works on the others), the world record, chat streams and fan-out (sharded
pub/sub), presence (swept by the survivors when an instance dies), rate limits and the tile
cache, and the right to compute a missing tile (one instance computes it, the others wait
for it in the cache). The job queue is the standalone shared Valkey (Dramatiq cannot run on a
cluster).
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.accounts import sign_in
from tests.cluster import ValkeyCluster
from tests.harness import ClusterHandle, ServeProcess
from tests.realtime.conftest import Client, Json, run

READY_TIMEOUT_S = 180.0
"""Three servers and two job workers starting at once on two shared cores."""
JOB_TIMEOUT_S = 120.0
LIMITS = json.dumps({"register_address": {"count": 10_000, "window_s": 3600}})


def is_type(kind: str) -> Callable[[Json], bool]:
    return lambda frame: frame["type"] == kind


@pytest.fixture
def instances(
    valkey_cluster: ValkeyCluster, shared_valkey: str, tmp_path: Path
) -> Iterator[list[ServeProcess]]:
    """Three ``worldgen serve`` on the session cluster (emptied), one key prefix; the first
    two run a job worker each."""
    env = {
        "REDIS_URL": ClusterHandle(valkey_cluster).url,
        "WORLDGEN_BROKER_URL": shared_valkey,
        "WORLDGEN_KEY_PREFIX": f"t{uuid.uuid4().hex[:12]}",
        "WORLDGEN_WARM_UP": "false",
        "WORLDGEN_LOG_LEVEL": "warning",
        "WORLDGEN_RATE_LIMITS": LIMITS,
        "WORLDGEN_REALTIME_PRESENCE_TIMEOUT_S": "3",
        "WORLDGEN_REALTIME_HEARTBEAT_S": "0.5",
        "WORLDGEN_REALTIME_MAINTENANCE_S": "0.5",
    }
    servers: list[ServeProcess] = []
    try:
        for i in range(3):
            job_workers = "1" if i < 2 else "0"
            servers.append(
                ServeProcess(
                    tmp_path / f"data-{i}",
                    tmp_path / f"serve-{i}.log",
                    env={**env, "WORLDGEN_JOB_WORKERS": job_workers},
                )
            )
        for server in servers:
            server.wait_ready(READY_TIMEOUT_S)
        yield servers
    finally:
        for server in servers:
            server.stop(signal.SIGINT)
    for server in servers:
        assert not server.survivors, f"processes outlived worldgen serve: {server.survivors}"


def _ws(server: ServeProcess, world_id: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/worlds/{world_id}"


async def _tile(server: ServeProcess, world_id: str, cookies: httpx.Cookies) -> tuple[str, bytes]:
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies, timeout=120) as http:
        response = await http.get(f"/tiles/{world_id}/0/0/0.png")
        assert response.status_code == 200, response.text
        return response.headers["etag"], response.content


async def _generated(server: ServeProcess) -> int:
    """Tiles this instance computed (its ``worldgen_tile_generation_seconds_count``)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        text = (await http.get("/metrics")).text
    counts = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("worldgen_tile_generation_seconds_count")
    ]
    return int(sum(counts))


async def _job_done(server: ServeProcess, job_id: str, cookies: httpx.Cookies) -> Json:
    """The job's record once it is done (bounded: a cold worker compiles its kernels first)."""
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies, timeout=30) as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + JOB_TIMEOUT_S
        while True:
            job: Json = (await http.get(f"/api/jobs/{job_id}")).json()
            if job["state"] == "done":
                return job
            assert job["state"] in ("queued", "running"), job
            assert loop.time() < deadline, f"job not done in {JOB_TIMEOUT_S} s: {job}"
            await asyncio.sleep(0.2)


async def _history(server: ServeProcess, world_id: str) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.get(f"/api/worlds/{world_id}/chat", params={"limit": 100})
        assert response.status_code == 200, response.text
        return [(m["id"], m["stream_id"]) for m in response.json()["messages"]]


def test_three_instances_on_a_cluster_converge_and_survive_a_killed_instance(
    instances: list[ServeProcess],
) -> None:
    a, b, c = instances

    async def main() -> None:
        # an account made on one instance is signed in on every other (sessions in Redis)
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
            await sign_in(http)
            made = await http.post(
                "/api/worlds", json={"name": "Shared", "tileset": "terrain", "seed": 11}
            )
            assert made.status_code == 201, made.text
            wid = made.json()["id"]
            cookies = httpx.Cookies(http.cookies)
        async with httpx.AsyncClient(base_url=c.url, cookies=cookies, timeout=30) as http:
            assert (await http.get("/api/auth/me")).status_code == 200

        # the same tile, byte for byte, from every instance, computed by one of them (the
        # others waited for it: single flight across instances)
        tiles = await asyncio.gather(*(_tile(s, wid, cookies) for s in instances))
        assert len(set(tiles)) == 1
        assert sum(await asyncio.gather(*(_generated(s) for s in instances))) == 1

        # one client on each instance; presence sees all three
        people = [await Client.open(_ws(s, wid)) for s in instances]
        for person in people:
            person.keep_alive(0.3)
        here = {e["session"] for e in people[2].welcome["presence"]}
        assert {p.you["session"] for p in people[:2]} <= here

        # chat through a, ping through c: every instance's client gets both, same stream ids
        chat_id = await people[0].chat("hello from a")
        ack = await people[0].until(lambda f: f["type"] == "ack" and f["id"] == chat_id, 10)
        for person in people[1:]:
            got = await person.until(is_type("chat"), 10)
            assert (got["id"], got["stream_id"]) == (chat_id, ack["stream_id"])
        await people[2].send({"type": "ping", "x": 5, "y": -7, "label": "here", "id": "p1"})
        for person in people[:2]:
            ping = await person.until(is_type("ping"), 10)
            assert (ping["x"], ping["y"], ping["user"]["id"]) == (5, -7, people[2].you["id"])
        # an edit made through b reaches everyone, and every instance serves the edited tile
        async with httpx.AsyncClient(base_url=b.url, cookies=cookies, timeout=120) as http:
            rect = {"x": 0, "y": 0, "w": 16, "h": 16}
            edit = await http.post(
                f"/api/worlds/{wid}/edits", json={"kind": "regenerate", "rect": rect}
            )
            assert edit.status_code == 201, edit.text
        for person in people:
            event = await person.until(is_type("edit"), 10)
            assert (event["id"], event["rect"]) == (1, [0, 0, 16, 16])
        edited = await asyncio.gather(*(_tile(s, wid, cookies) for s in instances))
        assert len(set(edited)) == 1
        assert edited[0][0] != tiles[0][0]  # a new content version, a new ETag

        # a background job queued through c (which runs no job worker) is done by a worker of
        # a or b; its record and result are the same from every instance
        async with httpx.AsyncClient(base_url=c.url, cookies=cookies, timeout=30) as http:
            body = {"x": 0, "y": 0, "w": 64, "h": 64, "scale": 1}
            queued = await http.post(f"/api/worlds/{wid}/exports", json=body)
            assert queued.status_code == 202, queued.text
            job_id = queued.json()["id"]
        job = await _job_done(a, job_id, cookies)
        async with httpx.AsyncClient(base_url=b.url, cookies=cookies, timeout=30) as http:
            result = await http.get(f"/api/jobs/{job_id}/result")
            assert result.status_code == 200, result.text
            assert result.content.startswith(b"\x89PNG")
            assert (await http.get(f"/api/jobs/{job_id}")).json()["state"] == job["state"]

        histories = await asyncio.gather(*(_history(s, wid) for s in instances))
        assert histories[0] == histories[1] == histories[2]
        assert [h[0] for h in histories[0]] == [chat_id, "p1"]
        last_seen = histories[0][-1][1]

        # kill -9 one instance: the others go on, and sweep its client out of presence
        gone = people[0]
        a.stop(signal.SIGKILL)
        session = gone.you["session"]
        await people[1].until(
            lambda f: f["type"] == "presence" and (f.get("left") or {}).get("session") == session,
            15,
        )
        after = await people[1].chat("still here")
        got = await people[2].until(lambda f: f["type"] == "chat" and f["id"] == after, 10)
        # the client of the dead instance reconnects elsewhere and misses nothing
        back = await Client.open(_ws(b, wid), last_id=last_seen, cookie=gone.cookie)
        replayed = [(m["id"], m["stream_id"]) for m in back.welcome["history"]]
        assert replayed == [(after, got["stream_id"])]
        assert await _tile(c, wid, cookies) == edited[0]
        for person in (*people[1:], back):
            await person.close()
        await gone.close()

    run(main())
