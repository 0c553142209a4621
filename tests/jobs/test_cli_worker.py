"""``worldgen worker``'s refusals (exit 2, one line naming the problem) and the settings of the
job queue (URLs checked like ``REDIS_URL``, passwords never shown)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worldgen.cli import main
from worldgen.settings import Settings


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["worker"], {}, "needs the queue's Redis"),
        (["worker", "--threads", "0"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "--threads"),
        (["worker", "--threads", "65"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "--threads"),
        (["worker", "--band-px", "15"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "--band-px"),
        (["worker", "--workers", "0"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "workers"),
        (["worker"], {"WORLDGEN_BROKER_URL": "http://x"}, "broker_url"),
        (
            ["worker", "--metrics-port", "65536"],
            {"REDIS_URL": "redis://127.0.0.1:1/0"},
            "worker_metrics_port",
        ),
        (["worker"], {"WORLDGEN_WORKER_METRICS_PORT": "-1"}, "worker_metrics_port"),
    ],
)
def test_worker_refuses_bad_settings(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name in ("REDIS_URL", "WORLDGEN_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_broker_url_settings() -> None:
    settings = Settings(broker_url="redis://:s3cret-pw@queue:6379/1", redis_url="redis://db:6379")
    assert "s3cret-pw" not in repr(settings)
    assert Settings(broker_url="  ").broker_url is None
    with pytest.raises(ValidationError, match="Redis URL"):
        Settings(broker_url="http://queue")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(broker_url="redis://:changeme@queue")
    assert (Settings().job_workers, Settings().jobs_per_user) == (1, 2)
    with pytest.raises(ValidationError):
        Settings(job_result_ttl_s=59)
