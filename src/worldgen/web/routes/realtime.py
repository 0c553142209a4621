"""Real-time routes: the world's WebSocket and its chat history over HTTP.

- ``GET /ws/worlds/{world_id}`` (WebSocket): the protocol of :mod:`worldgen.realtime.protocol`,
  served by the app's :class:`~worldgen.realtime.hub.Hub`. A handshake from a foreign
  ``Origin`` never gets here: the one cross-site check,
  :func:`~worldgen.web.hardening.origin_allowed`, refuses it in the middleware (close 1008
  before accepting, an HTTP 403), by the same rule as every unsafe HTTP request.
  The hub asks the guard (:func:`~worldgen.web.auth.sockets.view_check`) where it checks that the
  world exists, so a private world answers a non-member exactly as an unknown world does (an
  ``error`` ``not_found``, then close 4404). A signed-in user chats under their account (guests
  may watch); the socket closes when its session ends (4401) or its user loses access (4404).
- ``GET /api/worlds/{world_id}/chat?before=&limit=``: older messages, oldest first, with the
  cursor for the next (older) page.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, cast

from fastapi import APIRouter, Query, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from worldgen.errors import CLOSE_TRY_LATER, TransportClosedError
from worldgen.realtime.protocol import STREAM_ID_PATTERN, ChatOut, PingOut
from worldgen.store.chat import parse_stream_id
from worldgen.store.client import StorageError
from worldgen.web.auth.services import authorize, current_user
from worldgen.web.auth.sockets import author_of, view_check, watch_socket
from worldgen.web.deps import HubDep, WorldDep, get_hub, get_worlds
from worldgen.web.errors import invalid

__all__ = ["ChatHistory", "StarletteTransport", "router"]

router = APIRouter(tags=["realtime"])

HISTORY_MAX = 100


class StarletteTransport:
    """Starlette's WebSocket as the hub's :class:`~worldgen.realtime.connection.Transport`."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> str | bytes | None:
        """The next frame, or None once the client or the server closed the socket."""
        if self.websocket.client_state != WebSocketState.CONNECTED:
            return None
        try:
            message = await self.websocket.receive()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is not None:
            return cast(str, text)
        data = message.get("bytes")
        return cast(bytes, data) if data is not None else b""

    async def send(self, text: str) -> None:
        """Send a text frame; a gone socket raises :class:`TransportClosedError`."""
        if self.websocket.application_state != WebSocketState.CONNECTED:
            raise TransportClosedError
        try:
            await self.websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosedError from exc

    async def close(self, code: int, reason: str = "") -> None:
        """Close once; errors of an already gone socket are ignored."""
        if self.websocket.application_state == WebSocketState.DISCONNECTED:
            return
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code, reason[:120])


@router.websocket("/ws/worlds/{world_id}")
async def world_socket(websocket: WebSocket, world_id: str) -> None:
    """Chat, presence, pings and world events of one world (see ``docs/realtime.md``)."""
    hub = await get_hub(websocket)
    worlds = await get_worlds(websocket)
    try:
        user = await current_user(websocket)
    except StorageError:
        await websocket.close(CLOSE_TRY_LATER)
        return
    await websocket.accept()
    transport = StarletteTransport(websocket)
    unwatch = watch_socket(websocket, user, world_id, worlds, transport.close)
    try:
        await hub.serve(
            transport, world_id, user=author_of(user), can_view=view_check(websocket, user)
        )
    finally:
        unwatch()


class ChatHistory(BaseModel):
    """A page of chat history, oldest first."""

    model_config = ConfigDict(frozen=True)

    messages: list[ChatOut | PingOut]
    before: str | None = Field(
        description="Pass as ``before`` for the next older page; null when there is none."
    )


@router.get("/api/worlds/{world_id}/chat")
async def chat_history(
    world: WorldDep,
    request: Request,
    hub: HubDep,
    before: Annotated[str | None, Query(pattern=STREAM_ID_PATTERN, max_length=39)] = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX)] = 50,
) -> ChatHistory:
    """Messages older than ``before`` (the newest when absent), at most ``limit``."""
    await authorize(request, world, "view")
    if before is not None:
        try:
            oldest = parse_stream_id(before) == (0, 0)
        except ValueError:  # defensive: the pattern keeps parts below 2**64
            raise invalid(("query", "before"), "not a stream id (parts < 2**64)", before) from None
        if oldest:  # nothing is older than 0-0 (and Redis refuses the exclusive range)
            return ChatHistory(messages=[], before=None)
    messages = await hub.history(world.id, before=before, limit=limit)
    cursor = messages[0].stream_id if len(messages) == limit else None
    return ChatHistory(messages=messages, before=cursor)
