"""The WebSocket protocol of ``/ws/worlds/{id}``: one pydantic model per message (public contract).

Client → server (a discriminated union on ``type``; extra fields are ignored, types are strict):

- ``{"type":"hello","last_id"?,"guest"?}`` - first frame; ``last_id`` asks for every message
  after it; ``guest`` carries the identity a guest keeps in ``sessionStorage``.
- ``{"type":"chat","id","text"}`` - ``id`` is the client's message id (retries reuse it).
- ``{"type":"ping","x","y","label"?,"id"?}`` - a marker on the map.
- ``{"type":"heartbeat"}``.

Server → client: ``welcome``, ``ack``, ``chat``, ``ping``, ``presence``, ``world``, ``edit``,
``marker``, ``job`` (to its owner's sockets only), ``error`` and ``heartbeat`` (the answer to a
heartbeat, so a client can tell a dead connection from a quiet one).
Bounds: text 1..2000 characters, label ≤ 80, coordinates within ±2**31, ids ≤ 64 characters.
A frame that is not a valid client message raises :class:`~worldgen.errors.ProtocolError`
with a short message that names the field, never the input.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from worldgen.errors import ProtocolError
from worldgen.store.chat import (
    CLIENT_ID_PATTERN,
    COORD_MAX,
    LABEL_MAX,
    TEXT_MAX,
    Author,
    ChatRecord,
    Entry,
    PingRecord,
)

__all__ = [
    "STREAM_ID_PATTERN",
    "Ack",
    "ChatIn",
    "ChatOut",
    "ClientMessage",
    "EditOut",
    "ErrorOut",
    "GuestIdentity",
    "HeartbeatIn",
    "HeartbeatOut",
    "HelloIn",
    "JobStateOut",
    "Limits",
    "MarkerOut",
    "PingIn",
    "PingOut",
    "PresenceEntry",
    "PresenceOut",
    "ServerEvent",
    "ServerMessage",
    "User",
    "Welcome",
    "WorldInfo",
    "WorldOut",
    "You",
    "dump",
    "entry_message",
    "parse_client_message",
    "parse_server_event",
]

STREAM_ID_PATTERN = r"^\d{1,19}-\d{1,19}$"
"""A Redis stream id as clients may send it: up to 19 digits a part, so every id the pattern
admits is below 2**64 (real ids have 13-digit times) and the schema says exactly what is taken."""
GUEST_ID_PATTERN = r"^g-[0-9a-f]{8,32}$"
GUEST_NAME_PATTERN = r"^\w[\w .'-]{0,31}$"

User = Author
"""A participant as clients see it: ``{"id","name","guest"}`` (issue 6 adds signed-in users)."""

ClientId = Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]
StreamId = Annotated[str, Field(pattern=STREAM_ID_PATTERN)]
Coord = Annotated[int, Field(ge=-COORD_MAX, le=COORD_MAX)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


# --- client -> server -------------------------------------------------------------------------


class GuestIdentity(_Message):
    """A guest's self-chosen identity, kept by the browser for the tab's life."""

    id: str = Field(pattern=GUEST_ID_PATTERN)
    name: str = Field(min_length=1, max_length=32, pattern=GUEST_NAME_PATTERN)


class HelloIn(_Message):
    """First frame of a connection."""

    type: Literal["hello"]
    last_id: StreamId | None = None
    guest: GuestIdentity | None = None


class ChatIn(_Message):
    """A chat message; ``id`` makes it idempotent."""

    type: Literal["chat"]
    id: ClientId
    text: str = Field(min_length=1, max_length=TEXT_MAX)


class PingIn(_Message):
    """A marker on the map for everyone."""

    type: Literal["ping"]
    x: Coord
    y: Coord
    label: str | None = Field(default=None, max_length=LABEL_MAX)
    id: ClientId | None = None


class HeartbeatIn(_Message):
    """Keeps the sender in the presence list."""

    type: Literal["heartbeat"]


ClientMessage = Annotated[HelloIn | ChatIn | PingIn | HeartbeatIn, Field(discriminator="type")]
_CLIENT: TypeAdapter[HelloIn | ChatIn | PingIn | HeartbeatIn] = TypeAdapter(ClientMessage)
_TYPES = "hello, chat, ping, heartbeat"
_ID_RE = re.compile(CLIENT_ID_PATTERN)


def parse_client_message(frame: str | bytes) -> HelloIn | ChatIn | PingIn | HeartbeatIn:
    """Validate one text frame; raise :class:`ProtocolError` with a short, safe message."""
    try:
        return _CLIENT.validate_json(frame)
    except ValidationError as exc:
        raise _protocol_error(exc, frame) from None


def _protocol_error(exc: ValidationError, frame: str | bytes) -> ProtocolError:
    errors = exc.errors(include_input=False, include_url=False)
    kinds = {e["type"] for e in errors}
    ref = _message_id(frame)
    if "json_invalid" in kinds:
        return ProtocolError("the frame is not valid JSON", code="invalid_json")
    if "union_tag_invalid" in kinds:
        return ProtocolError(f"unknown message type; expected one of {_TYPES}", code="unknown_type")
    if "union_tag_not_found" in kinds:
        return ProtocolError(f'missing "type"; expected one of {_TYPES}', ref=ref)
    if any(not e["loc"] for e in errors):
        return ProtocolError("expected a JSON object", ref=ref)
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(p) for p in e["loc"][1:]) or "message"
        parts.append(f"{loc}: {e['msg']}")
    return ProtocolError("; ".join(parts), ref=ref)


def _message_id(frame: str | bytes) -> str | None:
    """The ``id`` of an invalid message when it has a valid one (so the client can drop it)."""
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and _ID_RE.fullmatch(value) else None


# --- server -> client -------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class You(Author):
    """The connection's own identity: the user plus this connection's session id."""

    session: str = Field(min_length=1, max_length=64)


class PresenceEntry(_Out):
    """One connection present in the world (a user with two tabs has two sessions)."""

    session: str = Field(min_length=1, max_length=64)
    user: User


class ChatOut(_Out):
    """A stored chat message."""

    type: Literal["chat"] = "chat"
    id: str
    stream_id: str
    user: User
    text: str
    ts: int = Field(description="Server time of storage, ms since the epoch.")


class PingOut(_Out):
    """A stored map ping."""

    type: Literal["ping"] = "ping"
    id: str
    stream_id: str
    user: User
    x: int
    y: int
    label: str | None = None
    ts: int


class Limits(_Out):
    """The limits this server enforces, so a client can respect them up front."""

    text_max: int = TEXT_MAX
    label_max: int = LABEL_MAX
    rate_messages: int
    rate_window_s: float
    max_frame_bytes: int
    heartbeat_s: float


class WorldInfo(_Out):
    """The world a connection is in."""

    id: str
    name: str


class Welcome(_Out):
    """The answer to ``hello``."""

    type: Literal["welcome"] = "welcome"
    you: You
    world: WorldInfo
    presence: list[PresenceEntry]
    history: list[ChatOut | PingOut]
    more: bool = Field(
        default=False, description="The replay continues with ordinary chat/ping frames."
    )
    limits: Limits


class Ack(_Out):
    """A client message is durably stored under ``stream_id``."""

    type: Literal["ack"] = "ack"
    id: str
    stream_id: str
    duplicate: bool = False


class PresenceOut(_Out):
    """Someone joined or left (exactly one of the two)."""

    type: Literal["presence"] = "presence"
    joined: PresenceEntry | None = None
    left: PresenceEntry | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PresenceOut:
        if (self.joined is None) == (self.left is None):
            raise ValueError("exactly one of joined and left")
        return self


class WorldOut(_Out):
    """The world changed: renamed (with its new name), its visibility ``changed``, or deleted
    (the socket then closes). ``version`` is the world record's version after the change, when
    the sender knows it (a client editing the world sends it back; see ``PATCH``)."""

    type: Literal["world"] = "world"
    event: Literal["renamed", "changed", "deleted"]
    world_id: str
    name: str | None = None
    visibility: Literal["public", "private"] | None = None
    version: int | None = None


class EditOut(_Out):
    """A map edit was applied (issue 14): clients re-fetch the tiles under ``changed`` and
    animate them. ``version`` is the world's new content version."""

    type: Literal["edit"] = "edit"
    id: int
    author: str
    author_name: str
    kind: str
    rect: list[int] | None = None
    changed: list[int] | None = None
    version: int
    reveal: dict[str, int | str] | None = None
    """The changed cells in the order the solver decided them (``x``, ``y``, ``step``, ``w``,
    ``h``, ``frames``, ``data``: see ``EditResult.reveal``); None: reveal at once."""


class MarkerOut(_Out):
    """A marker was placed or changed (``marker`` holds it) or deleted (``deleted`` its id)."""

    type: Literal["marker"] = "marker"
    marker: dict[str, str | int | float] | None = None
    deleted: int | None = None


class JobStateOut(_Out):
    """A background job of the socket's user changed state or progressed (issue 15): sent only
    to its owner's sockets of the job's world. The same fields as ``GET /api/jobs/{id}``, less
    the result's link (ask that once ``state`` is ``done``)."""

    type: Literal["job"] = "job"
    id: str = Field(max_length=100)
    world_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    state: Literal["queued", "running", "done", "failed"]
    percent: int = Field(ge=0, le=100)
    stage: str = Field(max_length=300)
    message: str = Field(max_length=600)


class ErrorOut(_Out):
    """A refused frame or a failure; ``id`` names the client message it is about, if any."""

    type: Literal["error"] = "error"
    code: str
    message: str
    id: str | None = None


class HeartbeatOut(_Out):
    """The answer to a heartbeat."""

    type: Literal["heartbeat"] = "heartbeat"


ServerMessage = (
    Welcome
    | Ack
    | ChatOut
    | PingOut
    | PresenceOut
    | WorldOut
    | ErrorOut
    | HeartbeatOut
    | EditOut
    | MarkerOut
    | JobStateOut
)
ServerEvent = Annotated[PresenceOut | WorldOut | EditOut | MarkerOut, Field(discriminator="type")]
"""Ephemeral events that travel between app instances over pub/sub."""
_EVENT: TypeAdapter[PresenceOut | WorldOut | EditOut | MarkerOut] = TypeAdapter(ServerEvent)


def parse_server_event(data: object) -> PresenceOut | WorldOut | EditOut | MarkerOut:
    """Validate an event received from another instance (raises ``ValidationError``)."""
    return _EVENT.validate_python(data)


def dump(message: ServerMessage) -> str:
    """The JSON text frame of ``message`` (``None`` fields left out)."""
    return message.model_dump_json(exclude_none=True)


def entry_message(entry: Entry) -> ChatOut | PingOut:
    """The frame of a stored stream entry."""
    record = entry.record
    if isinstance(record, ChatRecord):
        return ChatOut(
            id=record.id,
            stream_id=entry.stream_id,
            user=record.user,
            text=record.text,
            ts=entry.ts_ms,
        )
    assert isinstance(record, PingRecord)  # noqa: S101  narrows Record (chat or ping) for mypy
    return PingOut(
        id=record.id,
        stream_id=entry.stream_id,
        user=record.user,
        x=record.x,
        y=record.y,
        label=record.label,
        ts=entry.ts_ms,
    )
