"""The one settings object of the web app, read from the environment and validated at start-up.

Every field reads ``WORLDGEN_<FIELD>`` from the environment, except :attr:`Settings.redis_url`
which reads ``REDIS_URL`` (the name every Redis host and compose file already uses). Keyword
arguments win over the environment: ``Settings(port=9000)``. Nothing is built at import time; the
app factory and the ``serve`` command each build their own. Nonsense is refused with a message
that names the field (``workers=0``, a port out of range, a URL that is not Redis).

The real-time knobs are one section of it, :attr:`Settings.realtime` (a
:class:`RealtimeSettings`), whose fields read ``WORLDGEN_REALTIME_<FIELD>``:
``WORLDGEN_REALTIME_HEARTBEAT_S=5`` sets ``settings.realtime.heartbeat_s``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worldgen import tilesets
from worldgen.store.ratelimit import RateLimits

__all__ = ["LogLevel", "RealtimeSettings", "Settings"]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]

_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_PLACEHOLDER_SECRETS = frozenset({"changethis", "changeme", "change-me", "password", "secret"})
"""Passwords copied from an example: refused, so a deployment cannot start with one."""
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")


class RealtimeSettings(BaseSettings):
    """Limits, intervals and sizes of chat, presence and fan-out (``WORLDGEN_REALTIME_*``).

    Every wait here is bounded.
    """

    model_config = SettingsConfigDict(env_prefix="WORLDGEN_REALTIME_", extra="forbid", frozen=True)

    chat_maxlen: int = Field(default=10_000, ge=100, le=10_000_000, description="Stream MAXLEN ~.")
    dedup_ttl_s: int = Field(default=3600, ge=10, le=7 * 86400, description="Retry window.")
    history: int = Field(default=50, ge=0, le=1000, description="Messages in a fresh welcome.")
    replay_page: int = Field(default=100, ge=1, le=1000, description="Entries per stream read.")
    welcome_replay_max: int = Field(
        default=500, ge=1, le=10_000, description="Replayed entries inside the welcome itself."
    )
    presence_timeout_s: float = Field(
        default=25.0, gt=0, le=3600, description="A session silent this long has left."
    )
    heartbeat_s: float = Field(default=10.0, gt=0, le=600, description="Client heartbeat period.")
    maintenance_s: float = Field(
        default=2.0, gt=0, le=60, description="Safety-net poll, presence sweep, idle check."
    )
    rate_messages: int = Field(default=100, ge=1, le=100_000, description="Chats+pings/window.")
    rate_frames: int = Field(default=300, ge=1, le=100_000, description="Any frames/window.")
    rate_window_s: float = Field(default=60.0, gt=0, le=3600)
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    send_queue: int = Field(default=256, ge=8, le=100_000, description="Frames queued per client.")
    send_timeout_s: float = Field(default=10.0, gt=0, le=300, description="One send, at most.")
    hello_timeout_s: float = Field(default=10.0, gt=0, le=300)
    redis_concurrency: int = Field(
        default=24, ge=1, le=1000, description="Redis commands in flight from the hub."
    )
    backoff_base_s: float = Field(default=0.1, gt=0, le=10, description="Pub/sub and pumps.")
    backoff_cap_s: float = Field(default=5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _coherent(self) -> RealtimeSettings:
        if self.heartbeat_s >= self.presence_timeout_s:
            raise ValueError("heartbeat_s must be shorter than presence_timeout_s")
        if self.backoff_base_s > self.backoff_cap_s:
            raise ValueError("backoff_base_s must not exceed backoff_cap_s")
        return self


class Settings(BaseSettings):
    """Validated configuration of one app instance (see ``docs/operations.md``)."""

    model_config = SettingsConfigDict(
        env_prefix="WORLDGEN_",
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        hide_input_in_errors=True,  # a rejected REDIS_URL may hold a password
    )

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("redis_url", "REDIS_URL"),
        description=(
            "Redis/Valkey URL (redis+cluster:// for a cluster); None (or empty) starts the "
            "embedded Valkey server."
        ),
    )
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Field(
        default=Path("data"), description="Embedded Valkey keeps its AOF in data_dir/valkey."
    )
    workers: int = Field(default=2, ge=1, le=32, description="Tile generation processes.")
    key_prefix: str = Field(default="wg", description="First part of every Redis key name.")
    redis_pool_size: int = Field(
        default=64, ge=2, le=10_000, description="Redis connections per instance (a bound)."
    )
    redis_pool_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="Longest wait for a free Redis connection."
    )
    world_cache_s: float = Field(
        default=1.0,
        ge=0,
        le=1.0,
        description="World records cached in process this long (0 = off; privacy bound 1 s).",
    )
    exports_per_client: int = Field(
        default=2, ge=1, le=1000, description="Exports in flight per client address, then 429."
    )
    tile_cache_max: int = Field(default=20000, ge=1, le=10_000_000, description="Tiles in Redis.")
    memory_tile_cache: int = Field(
        default=512, ge=0, le=1_000_000, description="In-process LRU entries (0 turns it off)."
    )
    log_level: LogLevel = "info"
    log_json: bool = True
    allowed_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call unsafe methods; [] = same host."
    )
    warm_up: bool = Field(default=True, description="Compile the solver before serving.")
    warm_models: list[str] | None = Field(
        default=None,
        description=(
            "Bundled models whose disk cache a low-priority process fills after start-up "
            "(None: all; []: none), so that their first visitors do not wait for it."
        ),
    )
    session_idle_s: int = Field(
        default=7 * 86_400, ge=1, le=365 * 86_400, description="A session unused this long ends."
    )
    session_max_s: int = Field(
        default=30 * 86_400, ge=1, le=365 * 86_400, description="Every session ends this late."
    )
    rate_limits: RateLimits = Field(
        default_factory=RateLimits, description="Rate limits (JSON; see docs/security.md)."
    )
    ssl_certfile: Path | None = Field(default=None, description="Serve HTTPS with this cert.")
    ssl_keyfile: Path | None = Field(default=None, description="... and this private key.")
    max_connections: int = Field(
        default=4096, ge=1, le=1_000_000, description="Open HTTP connections, then 503."
    )
    max_connections_per_client: int = Field(
        default=128, ge=1, le=1_000_000, description="... from one client address, then 503."
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="A request's headers must arrive within this."
    )
    keep_alive_s: int = Field(
        default=5, ge=1, le=300, description="An idle keep-alive connection is closed after."
    )
    broker_url: str | None = Field(
        default=None,
        description="Redis URL of the job queue (Dramatiq's broker); None: the app's Redis.",
    )
    job_workers: int = Field(
        default=1,
        ge=0,
        le=32,
        description="Generation processes of the job worker that serve starts (0: none).",
    )
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="A job worker serves its Prometheus metrics on this port (on host); 0: none.",
    )
    jobs_per_user: int = Field(
        default=2, ge=1, le=1000, description="Background jobs queued or running per user."
    )
    job_result_ttl_s: int = Field(
        default=3600, ge=60, le=7 * 86_400, description="A job's result is kept this long."
    )
    model_bytes_per_user: int = Field(
        default=64 << 20,
        ge=1,
        le=1 << 40,
        description="Bytes of uploaded models one user may store (one more upload: 413).",
    )
    realtime: RealtimeSettings = Field(
        default_factory=RealtimeSettings,
        description="Chat, presence and fan-out (each field also from WORLDGEN_REALTIME_<FIELD>).",
    )

    @field_validator("redis_url", "broker_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme not in _REDIS_SCHEMES:
            raise ValueError(
                f"must be a Redis URL ({', '.join(s + '://' for s in _REDIS_SCHEMES)}), "
                f"got scheme {scheme!r}"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_standalone(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme in _CLUSTER_SCHEMES:
            raise ValueError(
                "the job queue (Dramatiq's Redis broker) cannot run on a Redis Cluster: "
                "name a standalone Redis"
            )
        return value

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _no_placeholder_password(cls, value: str | None) -> str | None:
        password = urlsplit(value).password if value is not None else None
        if password is not None and password.lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("the Redis password is a placeholder from an example; set a real one")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.session_idle_s > self.session_max_s:
            raise ValueError("session_idle_s must not exceed session_max_s")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together: give both or neither")
        if self.redis_cluster and self.broker_url is None:
            raise ValueError(
                "on a Redis Cluster (REDIS_URL redis+cluster://) the job queue needs a standalone "
                "Redis: set WORLDGEN_BROKER_URL (Dramatiq's broker cannot run on a cluster)"
            )
        return self

    @property
    def redis_cluster(self) -> bool:
        """True when :attr:`redis_url` names a Redis/Valkey Cluster (``redis+cluster://`` or
        ``rediss+cluster://``: any node of it, the client discovers the rest)."""
        return self.redis_url is not None and urlsplit(self.redis_url).scheme in _CLUSTER_SCHEMES

    @field_validator("key_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not _PREFIX_RE.fullmatch(value):
            raise ValueError(f"must match {_PREFIX_RE.pattern} (a short lowercase word)")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins_shape(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(f"{origin!r} is not an origin like https://example.org")
        return value

    @field_validator("warm_models")
    @classmethod
    def _bundled_models(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            known = [entry.name for entry in tilesets.catalog()]
            for name in value:
                if name not in known:
                    raise ValueError(f"{name!r} is not a bundled model ({', '.join(known)})")
        return value

    def redis_url_redacted(self) -> str | None:
        """:attr:`redis_url` with any password replaced by ``***`` (safe to log)."""
        return _redacted(self.redis_url)

    def __repr_args__(self) -> list[tuple[str | None, object]]:
        """The repr never shows a Redis password (of ``redis_url`` or ``broker_url``)."""
        return [
            (k, _redacted(v) if k in ("redis_url", "broker_url") and isinstance(v, str) else v)
            for k, v in super().__repr_args__()
        ]


def _redacted(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***``."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))
