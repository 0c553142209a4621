"""The one exception tree of worldgen, and how each error reaches a user.

Every error that worldgen raises on purpose derives from :class:`WorldgenError`. Each class
states, once, what a client is told: its HTTP ``status``, its ``code`` (the ``code`` of a
WebSocket ``error`` frame) and its WebSocket ``close_code`` (None: the socket stays open)::

    WorldgenError                    status  code              close  meaning
    ├── InputError                   400     invalid_input     -      the caller's input is wrong
    │   ├── TilesetError                                              a tileset is unusable
    │   ├── SampleError                                               a sample is unusable
    │   ├── ConstraintError                                           bad pins, bans, weights
    │   ├── EditRefusedError         422     edit_refused      -      an edit's pins contradict
    │   ├── QuotaExceededError       413     quota_exceeded    -      too large, or past a quota
    │   └── ProtocolError            400     invalid_message   -      a frame breaks the protocol
    │       ├── FrameTooLargeError   413     frame_too_large   1009   a frame over the limit
    │       └── HelloTimeoutError    408     hello_timeout     1008   no ``hello`` in time
    ├── SolveError                   500     -                 -      the solver gave up
    ├── SignInRequiredError          401     sign_in_required  -      the action needs an account
    ├── ForbiddenError               403     forbidden         -      the role is too weak
    ├── NotFoundError                404     not_found         4404   no such thing (or hidden)
    │   └── WorldNotFoundError       404     not_found         4404   unknown, deleted or private
    ├── ConflictError                409     conflict          -      the state forbids it
    │   ├── UsernameTakenError                                        the name is held
    │   ├── TooManyError                                              a per-world bound is reached
    │   └── StaleVersionError                                         an outdated version edited
    ├── RateLimitedError             429     rate_limited      -      retry after ``retry_after``
    │   └── FloodError               429     rate_limited      1008   a socket's own limit
    ├── IdleTimeoutError             408     idle_timeout      4408   no heartbeat in time
    ├── UnavailableError             503     unavailable       -      retry soon (``Retry-After``)
    │   ├── StorageUnavailableError                                   Redis is unreachable
    │   └── GeneratorUnavailableError                                 the generation pool is down
    └── TransportClosedError         -       -                 -      the socket is gone (internal)

Where the mapping is applied: HTTP in :mod:`worldgen.web.errors` (one handler reads the three
attributes; 5xx bodies stay generic), WebSocket frames and closes in
:mod:`worldgen.realtime.session`, exit codes in the command line (``InputError`` → 2,
``SolveError`` → 1). Errors of libraries are translated where they are caught: the Redis client's
errors (``worldgen.store.StorageError``) answer like :class:`StorageUnavailableError`.

Messages are short, written for the user, name the offending input and never contain a traceback
or internals. The WebSocket close codes the server uses are the ``CLOSE_*`` constants below.
"""

from __future__ import annotations

from typing import ClassVar, Final

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_IDLE",
    "CLOSE_INTERNAL",
    "CLOSE_NORMAL",
    "CLOSE_NOT_FOUND",
    "CLOSE_POLICY",
    "CLOSE_SIGNED_OUT",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_LATER",
    "ConflictError",
    "ConstraintError",
    "EditRefusedError",
    "FloodError",
    "ForbiddenError",
    "FrameTooLargeError",
    "GeneratorUnavailableError",
    "HelloTimeoutError",
    "IdleTimeoutError",
    "InputError",
    "NotFoundError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitedError",
    "SampleError",
    "SignInRequiredError",
    "SolveError",
    "StaleVersionError",
    "StorageUnavailableError",
    "TilesetError",
    "TooManyError",
    "TransportClosedError",
    "UnavailableError",
    "UsernameTakenError",
    "WorldNotFoundError",
    "WorldgenError",
]

# WebSocket close codes ---------------------------------------------------------------------------
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
"""The server is shutting down."""
CLOSE_POLICY: Final = 1008
"""A policy violation: a foreign ``Origin`` (refused before the handshake completes), no hello,
a flood of frames."""
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL: Final = 1011
CLOSE_TRY_LATER: Final = 1013
"""A slow consumer (its send queue overflowed), or storage unavailable during the join."""
CLOSE_SIGNED_OUT: Final = 4401
"""The socket's session ended (sign-out, password change)."""
CLOSE_NOT_FOUND: Final = 4404
"""An unknown, deleted or (for this user) invisible world."""
CLOSE_IDLE: Final = 4408
"""No heartbeat within the presence timeout."""


class WorldgenError(Exception):
    """Base class of every error raised on purpose by worldgen.

    ``message`` is what the user is told; ``ref`` names the client message an error is about
    (WebSocket ``error`` frames echo it as ``id``); ``code`` overrides the class's code for one
    more precise case (e.g. ``invalid_json`` is a :class:`ProtocolError`).
    """

    status: ClassVar[int] = 500
    """HTTP status (5xx bodies are generic: the message goes to the log only)."""
    code: ClassVar[str] = "error"
    """The ``code`` of a WebSocket ``error`` frame."""
    close_code: ClassVar[int | None] = None
    """Close the WebSocket with this code after the error frame; None keeps it open."""
    default_message: ClassVar[str] = ""

    def __init__(
        self, message: str | None = None, *, code: str | None = None, ref: str | None = None
    ) -> None:
        text = self.default_message if message is None else message
        super().__init__(text)
        self.message = text
        self.error_code = code or self.code
        self.ref = ref


# The caller's input ------------------------------------------------------------------------------


class InputError(WorldgenError):
    """The input is wrong; the message says what is wrong and how to fix it."""

    status = 400
    code = "invalid_input"


class TilesetError(InputError):
    """A tileset file is unreadable, malformed, or names something it does not define."""


class SampleError(InputError):
    """A sample bitmap is unreadable, too large, or has too many colours."""


class ConstraintError(InputError):
    """Solver constraints (pins, bans, ground, weights) are invalid or contradict each other."""


class EditRefusedError(InputError):
    """A map edit cannot be applied: its pins contradict each other, the locks or the rules
    (``cells`` names the conflicting cells as ``(x, y)``); nothing was changed."""

    status = 422
    code = "edit_refused"

    def __init__(
        self, message: str | None = None, *, cells: list[tuple[int, int]] | None = None
    ) -> None:
        super().__init__(message)
        self.cells = list(cells or [])


class ProtocolError(InputError):
    """A WebSocket frame that is not a valid client message; the connection stays open."""

    code = "invalid_message"


class FrameTooLargeError(ProtocolError):
    """A WebSocket frame larger than the limit."""

    status = 413
    code = "frame_too_large"
    close_code = CLOSE_TOO_BIG


class HelloTimeoutError(ProtocolError):
    """No ``hello`` arrived in time."""

    status = 408
    code = "hello_timeout"
    close_code = CLOSE_POLICY


# The solver --------------------------------------------------------------------------------------


class SolveError(WorldgenError):
    """The solver found no solution within its budget."""


# Who may do what ---------------------------------------------------------------------------------


class SignInRequiredError(WorldgenError):
    """The action needs an account and the request has none."""

    status = 401
    code = "sign_in_required"
    default_message = "sign in first"


class ForbiddenError(WorldgenError):
    """The user's role does not allow the action."""

    status = 403
    code = "forbidden"
    default_message = "your role in this world does not allow this"


class NotFoundError(WorldgenError):
    """No such thing (or one the requester may not know of)."""

    status = 404
    code = "not_found"
    close_code = CLOSE_NOT_FOUND
    default_message = "not found"


class WorldNotFoundError(NotFoundError):
    """No world has this id, it was deleted, or it is private and the requester is no member:
    all three answer the same, so a private world's existence is not revealed."""

    default_message = "world not found"


# State -------------------------------------------------------------------------------------------


class ConflictError(WorldgenError):
    """The current state forbids the change."""

    status = 409
    code = "conflict"


class UsernameTakenError(ConflictError):
    """Another account already holds this username (compared case-insensitively)."""

    default_message = "this username is taken"


class TooManyError(ConflictError):
    """A bound on members or invites of one world would be exceeded."""


class StaleVersionError(ConflictError):
    """The client edited an outdated version of a record (someone else changed it since)."""

    default_message = "the world was changed by someone else; reload and try again"


# Limits and availability -------------------------------------------------------------------------


class QuotaExceededError(InputError):
    """An upload is too large, or storing it would pass the user's quota (uploaded model
    bytes); the message says the limit, how much is used, and what to delete."""

    status = 413
    code = "quota_exceeded"
    default_message = "storage quota exceeded"


class RateLimitedError(WorldgenError):
    """A rate limit is exhausted; retry after ``retry_after`` seconds (at least 1) when known."""

    status = 429
    code = "rate_limited"
    default_message = "too many requests, retry later"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        code: str | None = None,
        ref: str | None = None,
    ) -> None:
        super().__init__(message, code=code, ref=ref)
        self.retry_after = None if retry_after is None else max(1, retry_after)


class FloodError(RateLimitedError):
    """A WebSocket exceeded its own frame or message limit: it is closed."""

    close_code = CLOSE_POLICY


class IdleTimeoutError(WorldgenError):
    """The client sent nothing, not even a heartbeat, for longer than the presence timeout."""

    status = 408
    code = "idle_timeout"
    close_code = CLOSE_IDLE
    default_message = "no heartbeat received"


class UnavailableError(WorldgenError):
    """A part the request needs is unavailable for now; retrying soon should work."""

    status = 503
    code = "unavailable"
    default_message = "service unavailable, retry"


class StorageUnavailableError(UnavailableError):
    """Redis is unreachable (a WebSocket message was not acknowledged: retry it, same id)."""

    default_message = "storage unavailable, retry"


class GeneratorUnavailableError(UnavailableError):
    """The generation pool is broken, shutting down, or took longer than its time limit."""

    default_message = "map generation unavailable, retry"


# Internal signals --------------------------------------------------------------------------------


class TransportClosedError(WorldgenError):
    """The client's socket is gone: nothing can reach it (reported to no one)."""
