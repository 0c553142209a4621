"""The environments the deployments give worldgen are valid settings: each compose setup's app and
worker environment and the Kubernetes ConfigMap plus Secret are read by the real
:class:`~worldgen.settings.Settings`, as ``worldgen serve`` and ``worldgen worker`` would read
them, and the example Secret's placeholder password is refused (it cannot be deployed as is).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import pytest
from pydantic import ValidationError

from tests.deploy.tools import DEPLOY, compose_json, k8s_resource
from worldgen.settings import Settings

SCALE = DEPLOY / "compose.scale.yaml"
GRAFANA = {"GRAFANA_ADMIN_PASSWORD": "not-a-real-password"}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings read from exactly ``env`` (the test process's own worldgen variables removed)."""
    for name in list(os.environ):
        if name.startswith("WORLDGEN_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def compose_env(*args: str) -> dict[str, dict[str, str]]:
    services: dict[str, Any] = compose_json(SCALE, *args, env=GRAFANA)["services"]
    return {name: services[name]["environment"] for name in ("app", "worker")}


def test_the_single_valkey_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, env in compose_env().items():
        settings = settings_from(env, monkeypatch)
        assert not settings.redis_cluster, name
        assert settings.redis_url == settings.broker_url == "redis://valkey:6379/0"
    app = settings_from(compose_env()["app"], monkeypatch)
    assert app.job_workers == 0
    assert app.worker_metrics_port == 0
    worker = settings_from(compose_env()["worker"], monkeypatch)
    assert worker.worker_metrics_port == 9100
    assert worker.host == "0.0.0.0"
    assert app.max_connections_per_client <= app.max_connections
    ipaddress.ip_network(compose_env()["app"]["FORWARDED_ALLOW_IPS"])  # uvicorn parses it so


def test_the_cluster_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, env in compose_env("--env-file", str(DEPLOY / "cluster.env")).items():
        settings = settings_from(env, monkeypatch)
        assert settings.redis_cluster, name
        assert settings.broker_url == "redis://valkey:6379/0"


def test_kubernetes_settings_with_a_real_password(monkeypatch: pytest.MonkeyPatch) -> None:
    data: dict[str, str] = k8s_resource("ConfigMap", "worldgen-settings")["data"]
    secret: dict[str, str] = k8s_resource("Secret", "worldgen-redis")["stringData"]
    real = {name: url.replace("change-me", "s3cr3t-from-a-vault") for name, url in secret.items()}
    settings = settings_from(data | real, monkeypatch)
    assert settings.redis_cluster
    assert settings.job_workers == 0
    [container] = k8s_resource("Deployment", "worldgen-worker")["spec"]["template"]["spec"][
        "containers"
    ]
    own = {e["name"]: e["value"] for e in container["env"]}
    worker = settings_from(data | real | own, monkeypatch)
    assert worker.worker_metrics_port == container["ports"][0]["containerPort"]
    assert settings.allowed_origins == ["https://maps.example.org"]
    ipaddress.ip_network(data["FORWARDED_ALLOW_IPS"])


def test_the_example_secret_cannot_be_deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    data: dict[str, str] = k8s_resource("ConfigMap", "worldgen-settings")["data"]
    secret: dict[str, str] = k8s_resource("Secret", "worldgen-redis")["stringData"]
    with pytest.raises(ValidationError, match="placeholder"):
        settings_from(data | secret, monkeypatch)
