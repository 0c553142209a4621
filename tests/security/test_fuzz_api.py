"""Schemathesis over the OpenAPI schema against a running ``worldgen serve`` on a real Valkey,
with every check (``--checks all``): no 5xx, every status, header, content type and body
documented, schema-valid requests accepted and schema-invalid ones refused, 405 with ``Allow``,
stateful links. Bounded: a few examples per operation and a time budget of about a minute.

Rules no JSON Schema can state are declared in :data:`CONFIG`: an export's picture is at most
4096 px a side (``max(w, h) * scale``; 16384 for an export job), a pre-render job at most 4096
tiles with ``z_min <= z_max``, so a schema-valid request may still be refused with 422. A map
edit depends on the world: a painted variant must exist in its model (400) and pins that
contradict each other, the locks or the rules are refused (422); a list of cells past its bound
may be refused by the body bound first (413). An uploaded model's file must be a PNG sample or a
tileset zip that makes a usable model (400 naming the problem, 413 past the size or the quota).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ValkeyHandle
from tests.security.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
FUZZ_BUDGET_S = 60
MAX_RESPONSE_TIME_S = 90
"""Only a hang is a failure: the first region or export compiles the solver (no warm-up)."""
CONFIG = """
[[operations]]
include-name = "GET /api/worlds/{world_id}/export.png"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422",
]

[[operations]]
include-name = "POST /api/worlds/{world_id}/exports"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422",
]

[[operations]]
include-name = "POST /api/worlds/{world_id}/prerenders"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422",
]

[[operations]]
include-name = "POST /api/worlds/{world_id}/tile-archives"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422",
]

[[operations]]
include-name = "POST /api/models"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "400", "413",
]

[[operations]]
include-name = "POST /api/worlds/{world_id}/edits"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "400", "422",
]
checks.negative_data_rejection.expected-statuses = [
    "400", "401", "403", "404", "409", "413", "422", "429", "5xx",
]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path, valkey_server: Callable[[], ValkeyHandle]) -> Iterator[str]:
    """A ``worldgen serve`` on a free port (one worker, no JIT warm-up); yields its URL."""
    valkey = valkey_server()
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": valkey.url,
            "WORLDGEN_WARM_UP": "false",
            "WORLDGEN_WARM_MODELS": "[]",
            "WORLDGEN_LOG_LEVEL": "warning",
            "NUMBA_CACHE_DIR": str(ROOT / ".cache" / "numba"),
        }
    )
    command = [str(Path(sys.executable).with_name("worldgen")), "serve", "--port", str(port)]
    command += ["--workers", "1", "--data-dir", str(tmp_path / "data")]
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(command, stdout=o, stderr=e, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "serving" not in out.read_text():
            assert proc.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, err.read_text()[-3000:]
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log = err.read_text()
        assert "unhandled error" not in log, log[-5000:]


@pytest.mark.standalone_only("its own app server; the API does not depend on the kind of Redis")
def test_schemathesis_all_checks_find_nothing(served: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=served, timeout=60) as client:
        registered = client.post(
            "/api/auth/register", json={"username": "fuzzer", "password": PASSWORD}
        )
        assert registered.status_code == 201
        token = client.cookies["wg_session"]
        world = client.post("/api/worlds", json={"name": "Fuzz", "tileset": "terrain", "seed": 1})
        assert world.status_code == 201, world.text
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{served}/openapi.json",
        "--checks",
        "all",
        "--max-response-time",
        str(MAX_RESPONSE_TIME_S),
        "--max-examples",
        "8",
        "--max-time",
        str(FUZZ_BUDGET_S),
        "--seed",
        "1",
        # one worker: with two threads, hypothesis parses lambdas' sources concurrently and
        # CPython 3.11's ast may fail ("AST constructor recursion depth mismatch"), a runtime
        # error of the tool that fails this test now and then
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        # a signed-in user, so the routes behind an account are explored too; logging out
        # would end the session half-way, so that one operation runs anonymously
        "--header",
        f"Cookie: wg_session={token}",
        "--exclude-path",
        "/api/auth/logout",
        "--exclude-path",
        "/metrics",
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=FUZZ_BUDGET_S + 60, cwd=tmp_path
    )
    failures = result.stdout.find("FAILURES")
    report = result.stdout[max(0, failures) :][:8000] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert time.monotonic() - started < FUZZ_BUDGET_S + 30
