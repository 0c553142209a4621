"""Errors of the real-time layer, mapped to ``error`` codes and WebSocket close codes here only.

::

    WorldgenError
    └── RealtimeError               code                 close
        ├── ProtocolError           invalid_json,        (stays open)
        │                           invalid_message,
        │                           unknown_type,
        │                           hello_required
        ├── UnavailableError        unavailable          (stays open; retry with the same id)
        ├── RateLimitedError        rate_limited         1008 policy violation
        ├── HelloTimeoutError       hello_timeout        1008 policy violation
        ├── FrameTooLargeError      frame_too_large      1009 message too big
        ├── IdleTimeoutError        idle_timeout         4408 (no heartbeat within the timeout)
        └── WorldGoneError          not_found            4404 (unknown or deleted world)

Other close codes the server uses: 1000 normal, 1001 server shutting down, 1008 forbidden
``Origin`` (refused before the handshake completes), 1013 slow consumer (its send queue
overflowed; no error frame can reach it) or storage unavailable during the join, 4401 the user
signed out (:meth:`~worldgen.realtime.hub.Hub.close_user`). Messages are short and leak no
internals.
"""

from __future__ import annotations

from typing import ClassVar

from worldgen.errors import WorldgenError

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_LATER = 1013
CLOSE_SIGNED_OUT = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_IDLE = 4408


class RealtimeError(WorldgenError):
    """An error reported to one client as ``{"type":"error","code","message"}``."""

    code: ClassVar[str] = "error"
    close_code: ClassVar[int | None] = None
    """Close the connection with this code after the error frame; None keeps it open."""

    def __init__(self, message: str, *, code: str | None = None, ref: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = code or self.code
        self.ref = ref
        """The client message id the error is about, when there is one."""


class ProtocolError(RealtimeError):
    """A frame that is not a valid client message; the connection stays open."""

    code = "invalid_message"


class UnavailableError(RealtimeError):
    """Storage is unreachable; the message was not acknowledged, retry it with the same id."""

    code = "unavailable"


class RateLimitedError(RealtimeError):
    """More messages than the per-connection limit allows within the window."""

    code = "rate_limited"
    close_code = CLOSE_POLICY


class HelloTimeoutError(RealtimeError):
    """No ``hello`` arrived in time."""

    code = "hello_timeout"
    close_code = CLOSE_POLICY


class FrameTooLargeError(RealtimeError):
    """A frame larger than the limit."""

    code = "frame_too_large"
    close_code = CLOSE_TOO_BIG


class IdleTimeoutError(RealtimeError):
    """The client sent nothing, not even a heartbeat, for longer than the presence timeout."""

    code = "idle_timeout"
    close_code = CLOSE_IDLE


class WorldGoneError(RealtimeError):
    """The world does not exist (any more)."""

    code = "not_found"
    close_code = CLOSE_NOT_FOUND
