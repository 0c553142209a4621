"""The app as a whole: probes, metrics, docs offline, static files, request ids, logs, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import worldgen.web.app as app_module
from tests.web.conftest import ClientFactory, WebClient, metric
from worldgen.errors import InputError
from worldgen.settings import Settings
from worldgen.store.embedded import EmbeddedValkeyError
from worldgen.web.app import Parts, create_app
from worldgen.web.deps import get_generator
from worldgen.web.generation import InlineGenerator
from worldgen.world.spec import WorldSpec

pytestmark = pytest.mark.anyio


class BrokenGenerator(InlineGenerator):
    """Tiles fail: with a bug (RuntimeError) or with an InputError, as the world layer would."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        raise self.error


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_no_app_is_built_at_import() -> None:
    assert not hasattr(app_module, "app")


async def test_a_failed_start_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = Settings(redis_url=None, data_dir=blocker / "data")
    app = create_app(settings, Parts(generator=InlineGenerator()))
    with pytest.raises(EmbeddedValkeyError):
        async with app.router.lifespan_context(app):
            pass
    assert app.state.startup_error.startswith("could not start the embedded Valkey server in ")


async def test_healthz_and_readyz(client: WebClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "redis": "ok", "generator": "ok"}


async def test_metrics_exposition(client: WebClient, world: dict[str, Any]) -> None:
    await client.get(f"/tiles/{world['id']}/0/0/0.png")
    await client.get("/api/worlds/nope")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "worldgen_http_request_duration_seconds_bucket",
        "worldgen_tile_generation_seconds_count",
        "worldgen_tile_cache_hits_total",
        "worldgen_tile_cache_misses_total",
        "worldgen_errors_total",
        "worldgen_websocket_connections",
    ):
        assert name in text, name
    assert "worldgen_generation_tasks 0.0" in text  # the tile above is done: nothing queued
    assert 'route="/tiles/{world_id}/{z}/{x}/{y}.png"' in text
    assert 'worldgen_errors_total{kind="not_found"} 1.0' in text
    assert world["id"] not in text  # route templates only: no ids as label values


async def test_two_apps_have_separate_metrics(make_client: ClientFactory) -> None:
    a, b = await make_client(), await make_client()
    await a.get("/healthz")
    await a.get("/healthz")
    count = "worldgen_http_request_duration_seconds_count"
    assert metric(a, count, route="/healthz", method="GET") == 2
    assert metric(b, count, route="/healthz", method="GET") == 0


async def test_unmatched_paths_share_one_label(client: WebClient) -> None:
    for path in ("/no/such/page", "/another/one"):
        assert (await client.get(path)).status_code == 404
    count = "worldgen_http_request_duration_seconds_count"
    assert metric(client, count, route="<unmatched>", method="GET") == 2


async def test_docs_are_served_offline(client: WebClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    html = response.text
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert refs, html
    assert all(ref.startswith("/") for ref in refs), refs
    assert not re.search(r"https?://", html)
    for ref in refs:
        assert (await client.get(ref)).status_code == 200, ref
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/api/worlds",
        "/api/worlds/{world_id}/region",
        "/tiles/{world_id}/{z}/{x}/{y}.png",
    ):
        assert path in spec["paths"]


async def test_static_files_and_leaflet(client: WebClient) -> None:
    for path in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/leaflet/images/marker-icon.png",
    ):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/static/vendor/leaflet/../../app.py")).status_code == 404


async def test_request_id_is_echoed_or_made(client: WebClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith<junk>"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", (await client.get("/healthz")).headers["x-request-id"])


async def test_access_log_is_json_without_query_strings(
    client: WebClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    await client.get(
        "/api/worlds?offset=0&token=hunter2", headers={"X-Request-ID": "req-42", "Cookie": "s=1"}
    )
    lines = [x for x in log_lines(capsys.readouterr().err) if x.get("event") == "request"]
    [line] = lines
    assert line["request_id"] == "req-42"
    assert (line["method"], line["route"], line["path"]) == ("GET", "/api/worlds", "/api/worlds")
    assert line["status"] == 422
    assert line["duration_ms"] >= 0
    assert "hunter2" not in json.dumps(line)
    assert "s=1" not in json.dumps(line)


async def test_a_bug_is_a_generic_500_with_a_logged_traceback(
    make_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await make_client(generator=BrokenGenerator(RuntimeError("secret internals")))
    wid = (await client.post("/api/worlds", json={"name": "w", "tileset": "pipes"})).json()["id"]
    capsys.readouterr()
    response = await client.get(f"/tiles/{wid}/0/0/0.png", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["x-request-id"] == "bug-1"
    assert metric(client, "worldgen_errors_total", kind="internal") == 1
    [logged] = [x for x in log_lines(capsys.readouterr().err) if x["event"] == "unhandled error"]
    assert logged["request_id"] == "bug-1"
    assert "secret internals" in json.dumps(logged["exception"])
    assert "locals" not in json.dumps(logged["exception"])


async def test_input_error_from_the_world_layer_is_400(make_client: ClientFactory) -> None:
    client = await make_client(generator=BrokenGenerator(InputError("tile lies outside")))
    wid = (await client.post("/api/worlds", json={"name": "w", "tileset": "pipes"})).json()["id"]
    response = await client.get(f"/tiles/{wid}/0/0/0.png")
    assert response.status_code == 400
    assert response.json() == {"detail": "tile lies outside"}


async def test_generator_swapped_by_dependency_override(
    client: WebClient, world: dict[str, Any]
) -> None:
    class Fixed(InlineGenerator):
        async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
            return b"\x89PNG fixed"

    client.app.dependency_overrides[get_generator] = Fixed
    response = await client.get(f"/tiles/{world['id']}/2/9/9.png")
    assert response.content == b"\x89PNG fixed"


async def test_pages_are_mounted(client: WebClient, world: dict[str, Any]) -> None:
    home = await client.get("/")
    assert home.status_code == 200
    assert "text/html" in home.headers["content-type"]
    assert (await client.get(f"/worlds/{world['id']}")).status_code == 200
    assert (await client.get("/worlds/AAAAAAAAAAAA")).status_code == 404


async def test_the_world_page_preloads_its_whole_module_graph(
    client: WebClient, world: dict[str, Any]
) -> None:
    page = (await client.get(f"/worlds/{world['id']}")).text
    preloaded = set(re.findall(r'<link rel="modulepreload" href="(/static/js/[\w.-]+)">', page))
    entries = set(re.findall(r'<script type="module" src="(/static/js/[\w.-]+)">', page))
    assert "/static/js/world.js" in entries
    assert entries <= preloaded
    # closed under imports: every module a preloaded module imports is preloaded too
    for path in sorted(preloaded):
        response = await client.get(path)
        assert response.status_code == 200, path
        imported = re.findall(r'from\s*"\./([\w.-]+)"', response.text)
        assert {f"/static/js/{name}" for name in imported} <= preloaded, path
    assert len(preloaded) >= 10  # the map, chat, editing, legend... modules
    # the opening view's far tiles are asked for by a classic script that waits for no
    # stylesheet: the page data, then it, come before the head's first stylesheet
    head = page.split("</head>", 1)[0]
    early = head.index('<script src="/static/js/early-tiles.js"></script>')
    assert head.index('id="world-data"') < early < head.index('rel="stylesheet"')
    assert (await client.get("/static/js/early-tiles.js")).status_code == 200


async def test_templates_autoescape(client: WebClient) -> None:
    template = client.app.state.templates.env.from_string("{{ v }}")
    assert template.render(v="<script>") == "&lt;script&gt;"
