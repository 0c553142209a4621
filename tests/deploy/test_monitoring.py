"""Monitoring of deploy/: the Prometheus scrape configs, the alert rules and the Grafana dashboard.

Every PromQL expression (dashboard panels, alert rules) is parsed by ``promql-parser`` (the
Prometheus grammar), and every metric it selects is checked against what worldgen exports: the
``/metrics`` output of a real app on a real Valkey, made to count each error kind a query names
(a storage outage, a broken generation pool, a bug), and a job worker's registry
(:class:`~worldgen.jobs.metrics.JobMetrics`, the one ``worldgen worker`` serves) with an attempt
of every outcome. A label a query filters, groups or names in a legend must appear on that
metric, and a filtered value must have been exported. The only metric not from worldgen is
Prometheus' own ``up``, whose ``job`` must be a scrape job of the configs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import promql_parser as promql
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.accounts import sign_in
from tests.conftest import ClientFactory, ValkeyHandle
from tests.deploy.tools import DEPLOY, k8s_resource, load_yaml
from worldgen.errors import GeneratorUnavailableError
from worldgen.jobs.metrics import JobMetrics, Outcome
from worldgen.web.generation import InlineGenerator
from worldgen.world.spec import WorldSpec

pytestmark = pytest.mark.anyio

PROMETHEUS = DEPLOY / "prometheus"
CONFIGS = [PROMETHEUS / "prometheus.yml", PROMETHEUS / "prometheus.k8s.yml"]
ALERTS = PROMETHEUS / "alerts.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "worldgen.json"
APP_JOB = "worldgen-app"
WORKER_JOB = "worldgen-worker"
TARGET_LABELS = {"instance", "job"}
"""Labels Prometheus adds to every scraped sample."""
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


# ---- PromQL -------------------------------------------------------------------------------------


@dataclass
class Query:
    """What one PromQL expression selects: metric names with their label matchers, the labels
    it groups by."""

    selectors: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    grouped: set[str] = field(default_factory=set)
    aggregated: bool = False


def parse(expr: str) -> Query:
    """Parse ``expr`` (Grafana's variables replaced by durations) and collect what it selects."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    query = Query()

    def visit(node: promql.Expr) -> bool:
        if isinstance(node, promql.VectorSelector):
            assert node.name, f"a selector without a metric name: {node}"
            equal = {
                m.name: m.value
                for m in node.matchers.matchers
                if m.op == promql.MatchOp.Equal and m.name != "__name__"
            }
            others = [m.name for m in node.matchers.matchers if m.op != promql.MatchOp.Equal]
            query.selectors.append((node.name, equal | dict.fromkeys(others, "")))
        if isinstance(node, promql.AggregateExpr):
            query.aggregated = True
            if node.modifier is not None:
                assert node.modifier.type == promql.AggModifierType.By, "use by (...), not without"
                query.grouped.update(node.modifier.labels)
        return True

    promql.walk(promql.parse(expr), visit)
    assert query.selectors, f"selects nothing: {expr}"
    return query


def test_the_parser_refuses_bad_promql() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        parse("sum(rate(worldgen_errors_total[5m])")
    assert parse('sum by (kind) (rate(worldgen_errors_total{kind="storage"}[5m]))').selectors == [
        ("worldgen_errors_total", {"kind": "storage"})
    ]


# ---- a real app's exposition --------------------------------------------------------------------


class SwitchableGenerator(InlineGenerator):
    """Tiles fail with :attr:`error` (no world is ever generated here)."""

    error: Exception = RuntimeError("a bug")

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        raise self.error


Exposition = dict[str, list[dict[str, str]]]
"""Sample name → the label sets it was exported with."""


def exposition_of(text: str) -> Exposition:
    samples: Exposition = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


@pytest.fixture
async def exposition(
    client_factory: ClientFactory, valkey_server: Callable[[], ValkeyHandle]
) -> Exposition:
    """What two real apps export on /metrics once they have counted every error kind the
    dashboard and the alerts name: tiles failing in the pool and with a bug, and a Redis outage.
    """
    generator = SwitchableGenerator()
    client = await client_factory(generator=generator)
    await sign_in(client)
    created = await client.post("/api/worlds", json={"name": "w", "tileset": "pipes"})
    assert created.status_code == 201, created.text
    world = created.json()["id"]
    generator.error = GeneratorUnavailableError()
    assert (await client.get(f"/tiles/{world}/0/0/0.png")).status_code == 503
    generator.error = RuntimeError("a bug")
    assert (await client.get(f"/tiles/{world}/1/0/0.png")).status_code == 500
    assert (await client.get("/api/worlds/nope")).status_code == 404
    text = (await client.get("/metrics")).text

    valkey = valkey_server()
    outage = await client_factory(redis_url=valkey.url)
    valkey.kill()
    assert (await outage.get("/api/worlds/AAAAAAAAAAAA")).status_code == 503
    text += (await outage.get("/metrics")).text
    return exposition_of(text + worker_exposition())


def worker_exposition() -> str:
    """A job worker's metrics after one attempt of every outcome (the queue gauge asks a fake
    broker count: the real one is a Lua call on the broker, tested in tests/jobs)."""
    metrics = JobMetrics(lambda: 3)
    for outcome in get_args(Outcome):
        with metrics.attempt("export") as ended:
            ended(outcome)
    return generate_latest(metrics.registry).decode()


def scrape_jobs() -> set[str]:
    return {job["job_name"] for path in CONFIGS for job in load_yaml(path)["scrape_configs"]}


def check_query(expr: str, exposition: Exposition, legend: str = "") -> None:
    """Every metric, label and filtered value of ``expr`` (and its legend's labels) exists."""
    query = parse(expr)
    known_labels: set[str] = set(TARGET_LABELS)
    for name, matchers in query.selectors:
        if name == "up":  # Prometheus' own, one per scrape target
            assert set(matchers) <= TARGET_LABELS, expr
            assert matchers.get("job", APP_JOB) in scrape_jobs(), expr
            continue
        assert name in exposition, f"{name} is not exported by the app ({expr})"
        exported = exposition[name]
        labels = {label for sample in exported for label in sample}
        known_labels |= labels
        for label, value in matchers.items():
            assert label in labels | TARGET_LABELS, f"{name} has no label {label} ({expr})"
            if value and label in labels:
                values = {sample.get(label) for sample in exported}
                assert value in values, f"{name}{{{label}={value!r}}} never exported ({expr})"
    for label in query.grouped - {"le"}:
        assert label in known_labels, f"grouped by {label}, which no selected metric has"
    if "le" in query.grouped:
        assert any(name.endswith("_bucket") for name, _ in query.selectors), expr
    for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
        assert label in known_labels, f"legend {label}: no selected metric has it ({expr})"
        if query.aggregated:
            assert label in query.grouped, f"legend {label}: aggregated away ({expr})"


# ---- Grafana ------------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] not in ("row", "text")]


def targets() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels():
        for target in panel["targets"]:
            yield panel, target


async def test_every_dashboard_query_names_exported_metrics(exposition: Exposition) -> None:
    checked = 0
    for panel, target in targets():
        try:
            check_query(target["expr"], exposition, target.get("legendFormat", ""))
        except AssertionError as error:
            raise AssertionError(f"panel {panel['title']!r}: {error}") from error
        checked += 1
    assert checked >= 15


async def test_every_alert_names_exported_metrics(exposition: Exposition) -> None:
    for group in load_yaml(ALERTS)["groups"]:
        for rule in group["rules"]:
            check_query(rule["expr"], exposition)


def test_the_dashboard_covers_what_operators_watch() -> None:
    exprs = " ".join(target["expr"] for _, target in targets())
    wanted = {
        "tile latency": 'worldgen_http_request_duration_seconds_bucket{route="/tiles/',
        "cache hit rate": "worldgen_tile_cache_hits_total",
        "cache misses": "worldgen_tile_cache_misses_total",
        "tile generation": "worldgen_tile_generation_seconds_bucket",
        "WebSocket connections": "worldgen_websocket_connections",
        "chat rate": "worldgen_realtime_messages_total",
        "chat delivery": "worldgen_realtime_delivery_seconds_bucket",
        "Redis errors": 'worldgen_errors_total{kind="storage"}',
        "fan-out listener": "worldgen_realtime_listener_up",
        "instances": 'up{job="worldgen-app"}',
        "workers": 'up{job="worldgen-worker"}',
        "job queue depth": "worldgen_job_queue_messages",
        "job durations": "worldgen_job_duration_seconds_bucket",
        "job outcomes (failures)": "worldgen_jobs_total",
        "jobs running": "worldgen_job_worker_busy",
    }
    missing = [what for what, needle in wanted.items() if needle not in exprs]
    assert not missing, missing


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0
    datasource = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yaml")
    [source] = datasource["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the compose service
    for panel, target in targets():
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}
        assert target["datasource"] == panel["datasource"]
    for panel in panels():
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


# ---- Prometheus ---------------------------------------------------------------------------------


def seconds(duration: str) -> float:
    return promql.parse_duration(duration).total_seconds()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_prometheus_config_is_well_formed(path: Path) -> None:
    config = load_yaml(path)
    assert set(config) <= {"global", "rule_files", "scrape_configs", "alerting"}
    settings = config["global"]
    assert 0 < seconds(settings["scrape_timeout"]) <= seconds(settings["scrape_interval"])
    seconds(settings["evaluation_interval"])
    assert [Path(f).name for f in config["rule_files"]] == [ALERTS.name]
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert len(names) == len(set(names))
    assert {APP_JOB, WORKER_JOB} <= set(names)
    discovery = {"static_configs", "dns_sd_configs", "kubernetes_sd_configs"}
    for job in config["scrape_configs"]:
        assert len(discovery & set(job)) == 1, job["job_name"]
        for relabel in job.get("relabel_configs", []):
            re.compile(relabel.get("regex", "(.*)"))
            assert relabel.get("action", "replace") in {"keep", "drop", "replace"}


def pod_view(deployment: dict[str, Any]) -> dict[str, str]:
    """Prometheus' view of a pod of ``deployment``: its labels and container port as the
    discovery's meta labels."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    meta = {
        f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
        for k, v in labels.items()
    }
    meta["__meta_kubernetes_pod_container_port_name"] = container["ports"][0]["name"]
    meta["__meta_kubernetes_pod_phase"] = "Running"
    return meta


def kept(job: dict[str, Any], pod: dict[str, str]) -> bool:
    for relabel in job["relabel_configs"]:
        if relabel.get("action") == "keep":
            value = ";".join(pod.get(label, "") for label in relabel["source_labels"])
            if re.fullmatch(relabel["regex"], value) is None:
                return False
    return True


def test_kubernetes_discovery_keeps_each_jobs_pods() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.k8s.yml")
    kustomization = load_yaml(DEPLOY / "k8s" / "kustomization.yaml")
    app = pod_view(k8s_resource("Deployment", "worldgen-app"))
    worker = pod_view(k8s_resource("Deployment", "worldgen-worker"))
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {APP_JOB, WORKER_JOB}
    for job in jobs.values():
        [sd] = job["kubernetes_sd_configs"]
        assert sd["role"] == "pod"
        assert sd["namespaces"]["names"] == [kustomization["namespace"]]
    assert kept(jobs[APP_JOB], app)
    assert not kept(jobs[APP_JOB], worker)
    assert kept(jobs[WORKER_JOB], worker)
    assert not kept(jobs[WORKER_JOB], app)
    pending = {**app, "__meta_kubernetes_pod_phase": "Pending"}
    assert not kept(jobs[APP_JOB], pending)


def test_alert_rules_are_well_formed() -> None:
    rules = [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert seconds(rule["for"]) >= 60, rule["alert"]  # no alert on a single bad scrape
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
    # the ones that matter page someone
    critical = {rule["alert"] for rule in rules if rule["labels"]["severity"] == "critical"}
    assert {"WorldgenNoAppInstance", "WorldgenRedisErrors", "WorldgenNoJobWorker"} <= critical
