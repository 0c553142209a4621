"""The authorisation policy: one table (:func:`decide`) and one guard (:class:`Guard`).

Every HTTP route, tile route and WebSocket asks :meth:`Guard.can` / :meth:`Guard.require`. A
private world answers exactly like a world that does not exist to anyone who is not a member.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal, get_args

from worldgen.errors import ForbiddenError, SignInRequiredError, WorldNotFoundError
from worldgen.store.members import ROLE_RANK, MemberRepo, Role
from worldgen.store.worlds import WorldRecord, WorldRepo
from worldgen.web.auth.sessions import User

__all__ = ["ACTIONS", "LIST_SCAN_MAX", "Action", "Decision", "Guard", "decide"]

Action = Literal[
    "view", "chat", "rename", "change", "delete", "members", "invite", "manage", "edit"
]
"""What one can do to a world.

``view``: the world, its map tiles, regions, exports, chat history and presence. ``chat``: send
chat messages and pings. ``rename``: change the name. ``change``: other settings (visibility).
``delete``: delete the world. ``members``: see who belongs. ``invite``: create, list and revoke
invite links. ``manage``: change members' roles and remove members. ``edit``: edit the map
(paint, lock, regenerate, undo) and place markers.
"""
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

_MIN_ROLE: Final[dict[Action, Role | None]] = {
    "view": None,
    "chat": None,
    "rename": "editor",
    "change": "owner",
    "delete": "owner",
    "members": "viewer",
    "invite": "owner",
    "manage": "owner",
    "edit": "editor",
}
"""The weakest role an action needs (None: none; every action but ``view`` needs an account)."""

LIST_SCAN_MAX: Final = 10_000
"""Newest worlds examined per listing: bounds the work of one ``GET /api/worlds``."""
_LIST_BATCH: Final = 200


class Decision(Enum):
    """The answer of the policy, and how each is told to the client."""

    ALLOW = "allow"
    NOT_FOUND = "not_found"
    """404, exactly like an unknown world: the world's existence is not revealed."""
    SIGN_IN = "sign_in"
    """401: the world is visible, the action needs an account."""
    FORBIDDEN = "forbidden"
    """403: the user's role is too weak."""


def decide(action: Action, *, visibility: str, role: Role | None, signed_in: bool) -> Decision:
    """The whole authorisation policy, as a pure function (tested exhaustively).

    - A private world does not exist for anyone without a role in it.
    - ``view`` of a visible world is always allowed (public worlds: to anyone).
    - Anything else needs an account, and a role at least as strong as :data:`_MIN_ROLE` says.
    """
    if visibility != "public" and role is None:
        return Decision.NOT_FOUND
    if action == "view":
        return Decision.ALLOW
    if not signed_in:
        return Decision.SIGN_IN
    need = _MIN_ROLE[action]
    if need is None or (role is not None and ROLE_RANK[role] >= ROLE_RANK[need]):
        return Decision.ALLOW
    return Decision.FORBIDDEN


class Guard:
    """Asks :func:`decide` with the user's role in the world (the one authorisation function)."""

    def __init__(self, members: MemberRepo) -> None:
        self.members = members

    async def role(self, user: User | None, world: WorldRecord) -> Role | None:
        """The user's role: the world's creator is always an owner; else the member hash."""
        if user is None:
            return None
        if world.owner is not None and world.owner == user.id:
            return "owner"
        return await self.members.role(world.id, user.id)

    async def decision(self, user: User | None, world: WorldRecord, action: Action) -> Decision:
        """The policy's answer (no Redis call for viewing a public world: the tile hot path)."""
        if action == "view" and world.visibility == "public":
            return Decision.ALLOW
        role = await self.role(user, world)
        return decide(action, visibility=world.visibility, role=role, signed_in=user is not None)

    async def can(self, user: User | None, world: WorldRecord, action: Action) -> bool:
        """True when ``user`` (None: anonymous) may do ``action`` to ``world``."""
        return await self.decision(user, world, action) is Decision.ALLOW

    async def require(self, user: User | None, world: WorldRecord, action: Action) -> None:
        """Return if allowed; else raise what the client is told (404, 401 or 403)."""
        answer = await self.decision(user, world, action)
        if answer is Decision.ALLOW:
            return
        if answer is Decision.NOT_FOUND:
            raise WorldNotFoundError
        if answer is Decision.SIGN_IN:
            raise SignInRequiredError
        raise ForbiddenError

    async def visible(
        self, user: User | None, worlds: WorldRepo, *, offset: int, limit: int
    ) -> list[WorldRecord]:
        """The worlds ``user`` may see, newest first: every public world, and the private
        worlds they belong to (their role checked in each world's member hash, the truth).
        At most :data:`LIST_SCAN_MAX` of the newest worlds are examined."""
        mine = set(await self.members.world_ids(user.id)) if user is not None else set()
        found: list[WorldRecord] = []
        skipped = 0
        total = await worlds.count()
        start = 0
        while len(found) < limit and start < min(total, LIST_SCAN_MAX):
            batch = await worlds.list(offset=start, limit=_LIST_BATCH)
            start += _LIST_BATCH
            for record in batch:
                if record.visibility != "public":
                    if user is None or (record.owner != user.id and record.id not in mine):
                        continue
                    if record.owner != user.id and await self.role(user, record) is None:
                        continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(record)
                if len(found) == limit:
                    break
        return found
