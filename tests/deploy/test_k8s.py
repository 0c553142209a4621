"""deploy/k8s/, checked without a cluster.

Every manifest is validated by ``kubernetes-validate`` (the Kubernetes OpenAPI schemas as JSON
schemas, strict: an unknown or misspelt field is an error) for the oldest and the newest
Kubernetes release we support. The tests then check what the schemas cannot: that selectors,
Services, the PDBs, the HPA and the Ingress point at what exists, the probes, the resources, the
settings' names, and that kustomization.yaml lists every manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate.utils as kv
import pytest

from tests.deploy.tools import K8S, k8s_manifests, k8s_resource, load_yaml, load_yaml_all
from worldgen.settings import Settings

VERSIONS = ("1.31.0", "1.37.0")
"""Oldest and newest supported releases (PDB unhealthyPodEvictionPolicy is GA from 1.31)."""
EXAMPLES = {"secret.example.yaml"}
"""Manifests shown as examples, not applied by kustomization.yaml."""
WRITTEN = {"/tmp", "/home/worldgen/.cache"}  # noqa: S108  # paths in the pod, not on this host
"""Where worldgen writes (temporary files, numba's and the patch libraries' caches)."""


def resources() -> list[dict[str, Any]]:
    return [doc for path in k8s_manifests() for doc in load_yaml_all(path)]


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", k8s_manifests(), ids=lambda p: p.name)
def test_manifest_is_valid_for_kubernetes(path: Path, version: str) -> None:
    docs = kv.resources_from_file(str(path))
    assert docs
    for doc in docs:
        kv.validate(doc, version, strict=True)  # raises on any schema violation


def test_the_validator_catches_a_misspelt_field() -> None:
    deployment = k8s_resource("Deployment", "worldgen-app")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    probe = container["readinessProbe"]
    probe["httpget"] = probe.pop("httpGet")
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, VERSIONS[-1], strict=True)


def test_kustomization_applies_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in k8s_manifests()} - EXAMPLES
    assert kustomization["namespace"] == k8s_resource("Namespace", "worldgen")["metadata"]["name"]
    [image] = kustomization["images"]
    containers = [
        c
        for r in resources()
        if r["kind"] == "Deployment"
        for c in r["spec"]["template"]["spec"]["containers"]
    ]
    assert {c["image"] for c in containers} == {image["name"]}


def test_the_app_probes_readiness_and_liveness() -> None:
    deployment = k8s_resource("Deployment", "worldgen-app")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port == {"http": 8000}
    assert container["args"][:2] == ["worldgen", "serve"]
    assert container["args"][container["args"].index("--port") + 1] == "8000"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # a cold start (numba compiling) must not be killed by the liveness probe
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


@pytest.mark.parametrize("name", ["worldgen-app", "worldgen-worker"])
def test_pods_are_bounded_and_unprivileged(name: str) -> None:
    deployment = k8s_resource("Deployment", name)
    spec = deployment["spec"]["template"]["spec"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(deployment))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's user
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert set(resources["limits"]) == {"cpu", "memory"}
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        if security.get("readOnlyRootFilesystem"):
            mounted = {m["mountPath"] for m in container["volumeMounts"]}
            assert mounted >= WRITTEN


def test_workers_run_jobs_and_the_apps_do_not() -> None:
    worker = k8s_resource("Deployment", "worldgen-worker")
    [container] = worker["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["worldgen", "worker"]
    # its metrics server is its liveness probe; it takes no traffic, so no readiness
    env = {e["name"]: e["value"] for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": int(env["WORLDGEN_WORKER_METRICS_PORT"])}
    assert env["WORLDGEN_HOST"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert not {"readinessProbe", "startupProbe"} & set(container)
    settings = k8s_resource("ConfigMap", "worldgen-settings")["data"]
    assert settings["WORLDGEN_JOB_WORKERS"] == "0"
    # not in the shared ConfigMap: an app's own job child would inherit it
    assert "WORLDGEN_WORKER_METRICS_PORT" not in settings
    # SIGTERM gives running jobs 10 s; the pod must wait at least that long
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 10


def test_settings_and_secrets_name_what_worldgen_reads() -> None:
    known = {f"WORLDGEN_{field.upper()}" for field in Settings.model_fields}
    known = (known - {"WORLDGEN_REDIS_URL"}) | {"REDIS_URL", "FORWARDED_ALLOW_IPS"}
    settings = k8s_resource("ConfigMap", "worldgen-settings")
    secret = k8s_resource("Secret", "worldgen-redis")
    names = set(settings["data"]) | set(secret["stringData"])
    assert names <= known, names - known
    assert {"REDIS_URL", "WORLDGEN_BROKER_URL"} <= set(secret["stringData"])
    assert not {"REDIS_URL", "WORLDGEN_BROKER_URL"} & set(settings["data"])  # passwords
    assert not secret["stringData"]["WORLDGEN_BROKER_URL"].startswith("redis+cluster")
    for name in ("worldgen-app", "worldgen-worker"):
        [container] = k8s_resource("Deployment", name)["spec"]["template"]["spec"]["containers"]
        own = {e["name"] for e in container.get("env", [])}
        assert own <= known, own - known
        sources = {
            (kind, source[kind]["name"])
            for source in container["envFrom"]
            for kind in ("configMapRef", "secretRef")
            if kind in source
        }
        assert sources == {("configMapRef", "worldgen-settings"), ("secretRef", "worldgen-redis")}


def test_service_pdb_hpa_and_ingress_point_at_the_app() -> None:
    app = k8s_resource("Deployment", "worldgen-app")
    labels = pod_labels(app)
    [container] = app["spec"]["template"]["spec"]["containers"]
    service = k8s_resource("Service", "worldgen-app")
    assert selects(service["spec"]["selector"], labels)
    [port] = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    worker = k8s_resource("Deployment", "worldgen-worker")
    assert not selects(service["spec"]["selector"], pod_labels(worker))

    for target in (app, worker):
        pdb = k8s_resource("PodDisruptionBudget", target["metadata"]["name"])
        assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(target))
        assert pdb["spec"]["maxUnavailable"] < target["spec"]["replicas"]

    hpa = k8s_resource("HorizontalPodAutoscaler", "worldgen-app")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", "worldgen-app")
    assert hpa["spec"]["minReplicas"] >= 2  # the PDB keeps one pod going during a drain

    ingress = k8s_resource("Ingress", "worldgen")
    [tls] = ingress["spec"]["tls"]
    assert tls["secretName"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"]
    [path] = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] == port["name"]
    # WebSockets idle for long: the ingress must not cut them at its 60 s default
    timeout = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]
    assert int(timeout) >= 600


def test_only_the_ingress_and_prometheus_reach_the_pods() -> None:
    """The app trusts forwarded headers from the pod network: nothing else may connect; a
    worker is scraped by Prometheus and takes nothing else."""
    app = k8s_resource("Deployment", "worldgen-app")
    policy = k8s_resource("NetworkPolicy", "worldgen-app")
    assert policy["spec"]["podSelector"]["matchLabels"] == pod_labels(app)
    [rule] = policy["spec"]["ingress"]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule["from"]
    }
    assert namespaces == {"ingress-nginx", "monitoring"}
    assert all(set(peer) == {"namespaceSelector"} for peer in rule["from"])
    assert [p["port"] for p in rule["ports"]] == ["http"]
    worker = k8s_resource("NetworkPolicy", "worldgen-worker")
    labels = pod_labels(k8s_resource("Deployment", "worldgen-worker"))
    assert worker["spec"]["podSelector"]["matchLabels"] == labels
    assert worker["spec"]["policyTypes"] == ["Ingress"]
    [rule] = worker["spec"]["ingress"]  # Prometheus only, on the metrics port
    monitoring = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    assert rule["from"] == [{"namespaceSelector": monitoring}]
    assert [p["port"] for p in rule["ports"]] == ["metrics"]
