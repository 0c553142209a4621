"""A background job's progress reaches its owner's sockets live, and no one else's (issue 15).

Two app instances on one real Valkey (or cluster): the owner has a socket of the world on each,
another signed-in member and a guest watch the same world. The job's state changes are made the
way they happen in production: queued and cancelled through the HTTP API (the web app's job
store announces them), started and advanced by a job store of its own (what a worker process
does), so the announcement travels over the world's channel to every instance.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from tests.accounts import sign_in
from tests.conftest import ValkeyHandle
from tests.realtime.conftest import AppServers, Client, Json, new_world, run, with_redis
from worldgen.store.jobs import JobStore
from worldgen.store.keys import Keys
from worldgen.web.auth.sessions import COOKIE_NAME

Server = Callable[[], ValkeyHandle]


def job_frame(state: str) -> Callable[[Json], bool]:
    return lambda f: f["type"] == "job" and f["state"] == state


async def frames_until_chat(client: Client, msg_id: str) -> list[Json]:
    """Every frame the client receives up to (and with) the chat message ``msg_id``."""
    seen: list[Json] = []
    while True:
        frame = await client.recv(timeout=5)
        seen.append(frame)
        if frame["type"] == "chat" and frame["id"] == msg_id:
            return seen


def test_job_progress_reaches_the_owners_sockets_and_no_one_elses(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2)

    async def advance(r: Redis, job_id: str) -> None:
        jobs = JobStore(r, Keys(), result_ttl_s=60)  # as a worker: its own client and store
        assert await jobs.start(job_id) is not None
        assert await jobs.progress(job_id, 40, "band 2 of 5")

    async def main() -> None:
        async with httpx.AsyncClient(base_url=a.http, timeout=30) as http:
            await sign_in(http)
            owner = (await http.get("/api/auth/me")).json()["id"]
            cookie = f"{COOKIE_NAME}={http.cookies[COOKIE_NAME]}"
            wid = await new_world(handle.url, "Jobs", owner=owner)
            mine_here = await Client.open(a.ws(wid), cookie=cookie)
            mine_there = await Client.open(b.ws(wid), cookie=cookie)
            member = await Client.open(b.ws(wid))  # another signed-in user in the world
            guest = await Client.open(a.ws(wid), guest={"id": "g-" + "ab" * 8, "name": "Gus"})

            queued = await http.post(
                f"/api/worlds/{wid}/exports", json={"x": 0, "y": 0, "w": 64, "h": 64}
            )
            assert queued.status_code == 202, queued.text
            job_id = queued.json()["id"]
            for sock in (mine_here, mine_there):
                frame = await sock.until(job_frame("queued"))
                assert frame == {
                    "type": "job",
                    "id": job_id,
                    "world_id": wid,
                    "kind": "export",
                    "state": "queued",
                    "percent": 0,
                    "stage": "queued",
                    "message": "",
                }

            await with_redis(handle.url, lambda r: advance(r, job_id))
            for sock in (mine_here, mine_there):
                running = await sock.until(lambda f: f["type"] == "job" and f["percent"] == 40)
                assert (running["state"], running["stage"]) == ("running", "band 2 of 5")

            assert (await http.delete(f"/api/jobs/{job_id}")).status_code == 204
            for sock in (mine_here, mine_there):
                failed = await sock.until(job_frame("failed"))
                assert failed["message"] == "cancelled by its owner"
            # the record says the same as the last frame (GET /api/jobs/{id} is unchanged)
            record = (await http.get(f"/api/jobs/{job_id}")).json()
            assert {k: record[k] for k in failed if k != "type"} == {
                k: v for k, v in failed.items() if k != "type"
            }

        # Every job frame was published before this chat message, on the same channel: the
        # member and the guest see the message, and not one job frame before it.
        said = await member.chat("anything about a job?")
        for sock in (member, guest):
            seen = await frames_until_chat(sock, said)
            assert [f for f in seen if f["type"] == "job"] == []

    run(main())
