"""The security settings refuse nonsense at start-up: placeholder Redis passwords, half a TLS
configuration, missing certificate files, sessions whose idle time exceeds their lifetime; and
the API docs page gets a policy that allows exactly its own inline script."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.security.conftest import SecClient
from worldgen.cli import main
from worldgen.settings import Settings
from worldgen.store.ratelimit import Limit, RateLimits

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.standalone_only(
        "HTTP headers and settings: nothing here depends on the kind of Redis"
    ),
]


@pytest.mark.parametrize("password", ["changethis", "CHANGEME", "password", "secret"])
def test_placeholder_redis_passwords_are_refused(password: str) -> None:
    with pytest.raises(ValidationError, match="placeholder") as caught:
        Settings(redis_url=f"redis://worldgen:{password}@redis:6379/0")
    assert f":{password}@" not in str(caught.value)  # the rejected URL is never echoed


def test_a_real_password_and_the_limits_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDGEN_RATE_LIMITS", '{"chat": {"count": 5, "window_s": 10}}')
    settings = Settings(redis_url="redis://worldgen:Xk29-long-random@redis:6379/0")
    assert settings.rate_limits.chat == Limit(count=5, window_s=10)
    assert settings.rate_limits.login_account == RateLimits().login_account
    assert "Xk29" not in repr(settings)
    monkeypatch.setenv("WORLDGEN_RATE_LIMITS", '{"chat": {"count": 0, "window_s": 10}}')
    with pytest.raises(ValidationError):
        Settings()


def test_sessions_and_tls_must_be_consistent(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="session_idle_s"):
        Settings(session_idle_s=100, session_max_s=99)
    Settings(session_idle_s=99, session_max_s=99)
    with pytest.raises(ValidationError, match="give both or neither"):
        Settings(ssl_certfile=tmp_path / "cert.pem")


def test_serve_refuses_missing_tls_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pem"
    code = main(["serve", "--ssl-certfile", str(missing), "--ssl-keyfile", str(missing)])
    assert code == 2
    assert "TLS file not found" in capsys.readouterr().err
    assert main(["serve", "--ssl-certfile", str(missing)]) == 2  # half a TLS configuration


async def test_the_docs_page_allows_only_its_own_inline_script(client: SecClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", response.text, flags=re.DOTALL)
    assert scripts
    script_src = next(p for p in policy.split("; ") if p.startswith("script-src"))
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src
    assert "unsafe-inline" not in script_src
    assert "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in policy
    # every other page keeps the strict policy
    assert "sha256" not in (await client.get("/")).headers["content-security-policy"]
