"""Settings: defaults, environment, overrides, and refusal of nonsense."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from worldgen.settings import RealtimeSettings, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "WORLDGEN_PORT", "WORLDGEN_WORKERS", "WORLDGEN_ALLOWED_ORIGINS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    s = Settings()
    assert s.redis_url is None
    assert (s.host, s.port, s.workers, s.key_prefix) == ("127.0.0.1", 8000, 2, "wg")
    assert s.data_dir == Path("data")
    assert s.allowed_origins == []
    assert s.warm_up
    assert s.log_json


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("WORLDGEN_PORT", "9000")
    monkeypatch.setenv("WORLDGEN_ALLOWED_ORIGINS", '["https://maps.example.org"]')
    s = Settings()
    assert (s.redis_url, s.port) == ("redis://cache:6379/0", 9000)
    assert s.allowed_origins == ["https://maps.example.org"]
    assert Settings(port=9100, redis_url="unix:///tmp/r.sock").port == 9100


def test_empty_redis_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "  ")
    assert Settings().redis_url is None


@pytest.mark.parametrize(
    "bad",
    [
        {"workers": 0},
        {"workers": 33},
        {"port": 0},
        {"port": 65536},
        {"redis_url": "http://localhost:6379"},
        {"key_prefix": "Bad Prefix"},
        {"tile_cache_max": 0},
        {"memory_tile_cache": -1},
        {"log_level": "loud"},
        {"allowed_origins": ["example.org"]},
        {"warm_models": ["terrain", "Terrain"]},
        {"no_such_setting": 1},
    ],
)
def test_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)


def test_limits_accepted() -> None:
    assert Settings(workers=1, port=1).workers == 1
    assert Settings(workers=32, port=65535).port == 65535


def test_warm_models_name_bundled_models(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().warm_models is None  # every bundled model
    monkeypatch.setenv("WORLDGEN_WARM_MODELS", '["lakes", "terrain"]')
    assert Settings().warm_models == ["lakes", "terrain"]
    monkeypatch.setenv("WORLDGEN_WARM_MODELS", "[]")
    assert Settings().warm_models == []
    with pytest.raises(ValidationError, match="'atlantis' is not a bundled model"):
        Settings(warm_models=["atlantis"])


def test_password_never_shown() -> None:
    s = Settings(redis_url="redis://app:hunter2@db:6379/0")
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s)
    assert s.redis_url_redacted() == "redis://app:***@db:6379/0"
    with pytest.raises(ValidationError) as info:
        Settings(redis_url="http://app:hunter2@db")
    assert "hunter2" not in str(info.value)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.port = 1


def test_realtime_is_a_section_that_keeps_its_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORLDGEN_REALTIME_HEARTBEAT_S", "3")
    monkeypatch.setenv("WORLDGEN_REALTIME_CHAT_MAXLEN", "500")
    s = Settings()
    assert (s.realtime.heartbeat_s, s.realtime.chat_maxlen) == (3.0, 500)
    assert Settings(realtime=RealtimeSettings(history=7)).realtime.history == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORLDGEN_REALTIME_CHAT_MAXLEN", "99"),  # limit 100
        ("WORLDGEN_REALTIME_HEARTBEAT_S", "30"),  # not shorter than the presence timeout
        ("WORLDGEN_REALTIME_BACKOFF_BASE_S", "9"),  # above the cap
    ],
)
def test_realtime_nonsense_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv(name)
    assert Settings().realtime.chat_maxlen == 10_000
