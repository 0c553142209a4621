"""deploy/compose.scale.yaml, checked without a Docker engine: N app replicas behind Caddy, job
workers, one Valkey or (profile ``cluster``, deploy/cluster.env) a 3+3 Valkey cluster with a
one-shot init, Prometheus and Grafana.

``docker compose config`` parses and normalises the file for both setups; the tests assert on
its JSON what docs/operations.md ("Scale out") promises, and run the app's health probe against
a real app.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import start_http_server

from tests.conftest import LiveServers, ValkeyHandle
from tests.deploy.tools import DEPLOY, compose_config, compose_json, load_yaml
from tests.harness import free_port
from worldgen.jobs.metrics import JobMetrics
from worldgen.settings import Settings

SCALE = DEPLOY / "compose.scale.yaml"
CLUSTER_ENV = DEPLOY / "cluster.env"
GRAFANA = {"GRAFANA_ADMIN_PASSWORD": "not-a-real-password"}
NODES = [f"valkey-{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def single() -> dict[str, Any]:
    return compose_json(SCALE, env=GRAFANA)


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return compose_json(SCALE, "--env-file", str(CLUSTER_ENV), env=GRAFANA)


def env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return dict(pairs)


def known_variable(name: str) -> bool:
    """An environment variable that worldgen (or uvicorn under it) reads."""
    fields = {f"WORLDGEN_{field.upper()}" for field in Settings.model_fields}
    return name in fields | {"REDIS_URL", "FORWARDED_ALLOW_IPS"} and name != "WORLDGEN_REDIS_URL"


def probe_code(service: dict[str, Any]) -> str:
    test: list[str] = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    return test[3]


# ---- both setups --------------------------------------------------------------------------------


def test_the_grafana_password_must_be_set() -> None:
    done = compose_config(SCALE)
    assert done.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in done.stderr


def test_services_of_each_setup(single: dict[str, Any], cluster: dict[str, Any]) -> None:
    base = {"proxy", "app", "worker", "valkey", "prometheus", "grafana"}
    assert set(single["services"]) == base
    assert set(cluster["services"]) == base | set(NODES) | {"valkey-cluster-init"}


def test_apps_are_replicas_behind_the_proxy_only(single: dict[str, Any]) -> None:
    services = single["services"]
    app = services["app"]
    assert app["deploy"]["replicas"] == 3
    assert "ports" not in app  # reached through the proxy only
    assert app["build"]["dockerfile"] == "deploy/Dockerfile"
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert {p["target"] for p in proxy["ports"]} == {80, 443}
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"
    mounts = {m["target"]: m for m in proxy["volumes"]}
    assert Path(mounts["/etc/caddy/Caddyfile"]["source"]) == DEPLOY / "Caddyfile"
    assert mounts["/data"]["type"] == "volume"  # Caddy's CA and certificates survive restarts
    # only the front network reaches the apps, and it is what uvicorn trusts for X-Forwarded-*
    subnet = single["networks"]["front"]["ipam"]["config"][0]["subnet"]
    assert app["environment"]["FORWARDED_ALLOW_IPS"] == subnet
    assert set(app["networks"]) == {"front", "back"}
    assert set(proxy["networks"]) == {"front"}
    assert single["networks"]["back"]["internal"] is True
    for name in ("valkey", "worker"):
        assert set(services[name]["networks"]) == {"back"}
        assert "ports" not in services[name]
    assert set(services["prometheus"]["networks"]) == {"front", "back"}


def test_replica_counts_come_from_the_environment() -> None:
    env = {**GRAFANA, "WORLDGEN_APP_REPLICAS": "5", "WORLDGEN_WORKER_REPLICAS": "4"}
    services = compose_json(SCALE, env=env)["services"]
    assert services["app"]["deploy"]["replicas"] == 5
    assert services["worker"]["deploy"]["replicas"] == 4


def test_the_app_is_ready_before_it_is_healthy(single: dict[str, Any]) -> None:
    app = single["services"]["app"]
    assert "/readyz" in probe_code(app)
    assert int(app["healthcheck"]["retries"]) >= 3
    assert app["init"] is True
    assert app["depends_on"]["valkey"]["condition"] == "service_healthy"
    # the cluster's init is waited for only where the profile runs it
    init = app["depends_on"]["valkey-cluster-init"]
    assert init == {"condition": "service_completed_successfully", "required": False}


def test_workers_run_jobs_and_the_apps_do_not(single: dict[str, Any]) -> None:
    services = single["services"]
    app, worker = services["app"], services["worker"]
    assert app["environment"]["WORLDGEN_JOB_WORKERS"] == "0"
    assert worker["command"][:2] == ["worldgen", "worker"]
    assert worker["image"] == app["image"]
    assert worker["build"] == app["build"]
    # a worker's health is its metrics port, not the app's /healthz of the image
    port = worker["environment"]["WORLDGEN_WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{port}/metrics" in probe_code(worker)
    assert worker["environment"]["WORLDGEN_HOST"] == "0.0.0.0"  # Prometheus scrapes it
    assert "WORLDGEN_WORKER_METRICS_PORT" not in app["environment"]
    assert worker["depends_on"]["valkey"]["condition"] == "service_healthy"
    for service in (app, worker):
        env = service["environment"]
        assert env["WORLDGEN_BROKER_URL"] == "redis://valkey:6379/0"
        assert env["REDIS_URL"] == "redis://valkey:6379/0"
        assert env["WORLDGEN_KEY_PREFIX"] == "wg"
        unknown = [name for name in env if not known_variable(name)]
        assert not unknown, f"variables worldgen does not read: {unknown}"


def test_the_standalone_valkey_keeps_its_aof_config(single: dict[str, Any]) -> None:
    valkey = single["services"]["valkey"]
    mounts = {m["target"]: m for m in valkey["volumes"]}
    assert mounts["/data"]["type"] == "volume"
    conf = mounts["/usr/local/etc/valkey/valkey.conf"]
    assert Path(conf["source"]) == DEPLOY / "redis.conf"
    assert conf["read_only"] is True
    assert valkey["healthcheck"]["test"] == ["CMD", "valkey-cli", "ping"]


# ---- the cluster profile ------------------------------------------------------------------------


def valkey_conf(path: Path) -> dict[str, str]:
    conf: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            conf[key.lower()] = value.strip()
    return conf


def test_cluster_env_selects_the_cluster(cluster: dict[str, Any]) -> None:
    values = env_file(CLUSTER_ENV)
    assert values["COMPOSE_PROFILES"] == "cluster"
    app = cluster["services"]["app"]
    url = app["environment"]["REDIS_URL"]
    assert url == values["WORLDGEN_REDIS_URL"]
    assert re.fullmatch(r"redis\+cluster://valkey-\d:6379", url)
    # Dramatiq's broker cannot run on a cluster: the queue stays on the standalone server
    for name in ("app", "worker"):
        env = cluster["services"][name]["environment"]
        assert env["REDIS_URL"] == url
        assert env["WORLDGEN_BROKER_URL"] == "redis://valkey:6379/0"


def test_six_cluster_nodes_announce_their_names(cluster: dict[str, Any]) -> None:
    conf = valkey_conf(DEPLOY / "valkey-cluster.conf")
    assert conf["cluster-enabled"] == "yes"
    assert conf["cluster-preferred-endpoint-type"] == "hostname"
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    assert conf["maxmemory-policy"] == "noeviction"
    assert conf["dir"] == "/data"
    volumes: set[str] = set()
    for name in NODES:
        node = cluster["services"][name]
        command = node["command"]
        assert command[:2] == ["valkey-server", "/usr/local/etc/valkey/valkey.conf"]
        assert command[command.index("--cluster-announce-hostname") + 1] == name
        mounts = {m["target"]: m for m in node["volumes"]}
        assert Path(mounts["/usr/local/etc/valkey/valkey.conf"]["source"]) == (
            DEPLOY / "valkey-cluster.conf"
        )
        assert mounts["/data"]["type"] == "volume"
        volumes.add(mounts["/data"]["source"])
        assert node["healthcheck"]["test"] == ["CMD", "valkey-cli", "ping"]
        assert node["networks"].keys() == {"back"}
        assert "ports" not in node
    assert len(volumes) == len(NODES)  # one data volume per node


def test_the_init_container_creates_a_3_plus_3_cluster_once(cluster: dict[str, Any]) -> None:
    init = cluster["services"]["valkey-cluster-init"]
    assert init["restart"] == "no"
    assert {name: dep["condition"] for name, dep in init["depends_on"].items()} == dict.fromkeys(
        NODES, "service_healthy"
    )
    script = " ".join(init["command"])
    create = re.search(r"valkey-cli --cluster create (.*?) --cluster-replicas (\d)", script)
    assert create is not None, script
    assert create.group(1).split() == [f"{name}:6379" for name in NODES]
    assert create.group(2) == "1"  # 6 nodes, one replica each: 3 masters
    assert "--cluster-yes" in script
    # an existing cluster (a restart of the stack) is left alone
    assert script.index("cluster_state:ok") < script.index("--cluster create")


def test_only_the_cluster_profile_runs_the_cluster() -> None:
    model = load_yaml(SCALE)
    for name in [*NODES, "valkey-cluster-init"]:
        assert model["services"][name]["profiles"] == ["cluster"]
    for name in ("proxy", "app", "worker", "valkey", "prometheus", "grafana"):
        assert "profiles" not in model["services"][name]


# ---- monitoring ---------------------------------------------------------------------------------


def test_prometheus_and_grafana_are_provisioned(single: dict[str, Any]) -> None:
    services = single["services"]
    prometheus = services["prometheus"]
    mounts = {m["target"]: Path(m["source"]) for m in prometheus["volumes"] if m["type"] == "bind"}
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if "config.file" in a)
    assert mounts[config_path] == DEPLOY / "prometheus" / "prometheus.yml"
    config = load_yaml(mounts[config_path])
    for rule_file in config["rule_files"]:
        assert mounts[rule_file].is_file()  # the rules Prometheus loads are mounted
    assert {p["host_ip"] for p in prometheus["ports"]} == {"127.0.0.1"}
    grafana = services["grafana"]
    mounts = {m["target"]: Path(m["source"]) for m in grafana["volumes"] if m["type"] == "bind"}
    assert mounts["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "worldgen.yaml")
    dashboards = provider["providers"][0]["options"]["path"]
    assert mounts[dashboards] == DEPLOY / "grafana" / "dashboards"
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (mounts[str(home.parent)] / home.name).is_file()
    password = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password == GRAFANA["GRAFANA_ADMIN_PASSWORD"]
    assert {p["host_ip"] for p in grafana["ports"]} == {"127.0.0.1"}
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_prometheus_scrapes_every_app_replica_and_worker(single: dict[str, Any]) -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    services = single["services"]
    ports = {
        "app": 8000,
        "worker": int(services["worker"]["environment"]["WORLDGEN_WORKER_METRICS_PORT"]),
    }
    for service, port in ports.items():
        [job] = [j for j in config["scrape_configs"] if j["job_name"] == f"worldgen-{service}"]
        [sd] = job["dns_sd_configs"]
        assert sd["type"] == "A"  # every container of the service, not one
        assert sd["names"] == [service]
        assert sd["port"] == port
        assert job["metrics_path"] == "/metrics"
        # Prometheus shares a network with them
        assert set(services["prometheus"]["networks"]) & set(services[service]["networks"])


# ---- the app's probe, run against a real app -----------------------------------------------------


def run_probe(code: str, port: int) -> int:
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode


def test_the_readiness_probe_follows_redis(
    single: dict[str, Any],
    live_servers: LiveServers,
    valkey_server: Callable[[], ValkeyHandle],
) -> None:
    valkey = valkey_server()
    [server] = live_servers(redis_url=valkey.url)
    code = probe_code(single["services"]["app"])
    assert run_probe(code, server.port) == 0
    valkey.kill()
    assert run_probe(code, server.port) != 0  # /readyz: 503 while Redis is away


@pytest.mark.parametrize("args", [(), ("--env-file", str(CLUSTER_ENV))], ids=["single", "cluster"])
def test_compose_has_nothing_to_warn_about(args: tuple[str, ...]) -> None:
    done = compose_config(SCALE, *args, env=GRAFANA)
    assert done.returncode == 0
    assert done.stderr == ""  # no obsolete key, unset variable or ignored option


def test_the_worker_probe_follows_its_metrics_server(single: dict[str, Any]) -> None:
    """The worker's health check against the metrics server a real worker runs."""
    worker = single["services"]["worker"]
    port = int(worker["environment"]["WORLDGEN_WORKER_METRICS_PORT"])
    code = probe_code(worker).replace(f"127.0.0.1:{port}", "127.0.0.1:8000")
    serving = free_port()
    # what JobMetrics.serve runs, kept to be shut down
    server, thread = start_http_server(serving, "127.0.0.1", JobMetrics(lambda: 0).registry)
    try:
        assert run_probe(code, serving) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert run_probe(code, serving) != 0  # nothing listens: unhealthy
