"""Security-test fixtures: whole apps (lifespan included) on a real Valkey, driven by httpx.

``make_client(passwords=..., **settings)`` is the harness's ``client_factory`` (see
``tests/harness.py``): apps share the session Valkey and isolate themselves by key prefix. Most
tests use a cheap argon2id to stay fast; the tests of hashing itself pass the default
parameters. ``signed_in(client, name)`` registers an account and returns a client of the same
app holding that account's cookie; ``live_apps(n, **settings)`` starts ``n`` instances under
uvicorn sharing one Redis keyspace.
"""

from __future__ import annotations

import pytest

from tests.accounts import PASSWORD
from tests.conftest import ClientFactory, LiveServers
from tests.harness import AppClient, LiveServer, another, signed_in

__all__ = ["PASSWORD", "ClientFactory", "LiveApp", "LiveApps", "SecClient", "another", "signed_in"]

SecClient = AppClient
LiveApp = LiveServer
LiveApps = LiveServers


@pytest.fixture
def make_client(client_factory: ClientFactory) -> ClientFactory:
    """Factory of started apps (fast hashing unless ``passwords`` is given), anonymous clients."""
    return client_factory


@pytest.fixture
async def client(make_client: ClientFactory) -> SecClient:
    """A started app with default settings (fast hashing)."""
    return await make_client()


@pytest.fixture
def live_apps(live_servers: LiveServers) -> LiveApps:
    """Factory: ``live_apps(n, **settings)`` starts ``n`` instances sharing one Redis keyspace."""
    return live_servers
