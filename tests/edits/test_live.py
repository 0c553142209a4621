"""Applied edits and marker changes reach every viewer of the world, on every app instance."""

from __future__ import annotations

import httpx

from tests.accounts import sign_in
from tests.conftest import LiveServers
from tests.realtime.conftest import FAST, Client, run


def test_edit_and_marker_events_reach_both_instances(live_servers: LiveServers) -> None:
    a, b = live_servers(2, realtime=FAST)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=a.http, timeout=30) as http:
            await sign_in(http)
            made = await http.post("/api/worlds", json={"name": "Live", "tileset": "terrain"})
            wid = made.json()["id"]
            here = await Client.open(a.ws(wid))
            there = await Client.open(b.ws(wid))
            rect = {"x": 0, "y": 0, "w": 16, "h": 16}
            got = await http.post(
                f"/api/worlds/{wid}/edits", json={"kind": "regenerate", "rect": rect}
            )
            assert got.status_code == 201, got.text
            for client in (here, there):
                event = await client.until(lambda f: f["type"] == "edit", timeout=3)
                assert event["id"] == 1
                assert event["version"] == 1
                assert event["kind"] == "regenerate"
                assert event["rect"] == [0, 0, 16, 16]
                # the reveal of the change travels with it (cells in the solver's order)
                assert event["reveal"] == got.json()["reveal"]
                assert event["reveal"]["frames"] > 1
            placed = await http.post(
                f"/api/worlds/{wid}/markers", json={"x": 3, "y": 4, "label": "<b>Camp</b>"}
            )
            assert placed.status_code == 201
            for client in (here, there):
                event = await client.until(lambda f: f["type"] == "marker", timeout=3)
                assert event["marker"]["label"] == "<b>Camp</b>"

    run(main())
