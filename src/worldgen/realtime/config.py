"""Settings of the real-time layer (chat, presence, fan-out), read from ``WORLDGEN_REALTIME_*``.

Kept apart from :class:`worldgen.settings.Settings` so the real-time knobs live next to the code
that uses them; the app's lifespan builds one (or takes ``app.state.realtime_settings`` when a
test or a deployment set it before start-up). Every wait here is bounded.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RealtimeSettings"]


class RealtimeSettings(BaseSettings):
    """Validated limits, intervals and sizes of the real-time layer."""

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
    backoff_base_s: float = Field(default=0.1, gt=0, le=10)
    backoff_cap_s: float = Field(default=5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _coherent(self) -> RealtimeSettings:
        if self.heartbeat_s >= self.presence_timeout_s:
            raise ValueError("heartbeat_s must be shorter than presence_timeout_s")
        if self.backoff_base_s > self.backoff_cap_s:
            raise ValueError("backoff_base_s must not exceed backoff_cap_s")
        return self
