"""Fan-out across app instances: the signals instances send each other, streams as the record.

A stored message is followed by a small *wake-up* on its world's channel; every instance
subscribed to that channel (it has local sockets in the room) reads the stream from the room's
last delivered id. Ephemeral events (presence, world renamed/deleted) travel as the payload
itself, and so do a job's state changes (for its owner's sockets only); closing a user's sockets
everywhere travels on the control channel. Pub/sub is lossy by design, so nothing depends on it
alone: rooms also poll their stream every few seconds, presence and world state are re-read
periodically, and pages re-read a job's record now and then.

The channels themselves are served by the instance's one :class:`~worldgen.store.pubsub.PubSub`
(reconnects with back-off, and a notice after each reconnect so rooms catch up from their last
ids: a restart of Redis costs latency, never a message). This module only defines the payloads:
JSON validated by pydantic on receipt (never pickle); ``o`` is the sending instance, so an
instance ignores its own signals (it already delivered locally).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from worldgen.realtime.protocol import JobStateOut, ServerEvent


class WakeSignal(BaseModel):
    """New entries are in the world's stream."""

    model_config = ConfigDict(frozen=True)
    k: Literal["wake"] = "wake"
    o: str = Field(max_length=64)


class EventSignal(BaseModel):
    """An ephemeral event for every socket in the room."""

    model_config = ConfigDict(frozen=True)
    k: Literal["event"] = "event"
    o: str = Field(max_length=64)
    m: ServerEvent


class JobSignal(BaseModel):
    """A background job changed (issue 15), for its ``owner``'s sockets only. Published by the
    job store (:func:`worldgen.store.jobs.job_signal`), in web requests and in job workers."""

    model_config = ConfigDict(frozen=True)
    k: Literal["job"] = "job"
    o: str = Field(max_length=64)
    owner: str = Field(min_length=1, max_length=64)
    m: JobStateOut


class CloseUserSignal(BaseModel):
    """Close every socket of one user, on every instance (sent on the control channel)."""

    model_config = ConfigDict(frozen=True)
    k: Literal["close_user"] = "close_user"
    o: str = Field(max_length=64)
    user_id: str = Field(min_length=1, max_length=64)
    code: int = Field(ge=4000, le=4999)
    reason: str = Field(max_length=120)


AnySignal = WakeSignal | EventSignal | JobSignal | CloseUserSignal
Signal = Annotated[AnySignal, Field(discriminator="k")]
_SIGNAL: TypeAdapter[AnySignal] = TypeAdapter(Signal)


def parse_signal(data: bytes) -> AnySignal:
    """Validate a payload read from a channel (raises ``ValidationError``)."""
    return _SIGNAL.validate_json(data)
