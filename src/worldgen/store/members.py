"""Who belongs to a world and with which role, and the invite links that let people join.

Storage (all under the world's hash tag, so deleting the world deletes them too):

- ``members``: hash user id → ``{"role", "joined"}`` JSON. This hash is the truth about roles.
- ``invites``: hash invite id → ``{"id", "role", "created", "expires", "created_by",
  "max_uses", "token_digest"}`` JSON; ``invite-uses``: hash invite id → times accepted.
- Per user, ``user_worlds``: the ids of worlds the user belongs to. It is an index for listing
  only (it lives in another cluster slot, so it cannot be updated atomically with the member
  hash); every read is checked against the member hash.

Invariants:

- An invite token is ``<world id>.<invite id>.<secret>``; only the secret's SHA-256 is stored, so
  the invite list never reveals a usable link. Accepting is one Lua script over the world's keys:
  it checks the digest, the expiry and the use count, and writes the membership atomically.
- Accepting never lowers a role: a member who opens a weaker invite keeps what they had.
- A world's creator (``WorldRecord.owner``) is an owner whatever this hash says; callers refuse
  to demote or remove them (see :mod:`worldgen.web.routes.members`), so every world that had an
  owner keeps one.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from typing import Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from worldgen.errors import TooManyError
from worldgen.store.keys import Keys, digest, valid_user_id, valid_world_id
from worldgen.store.replies import text as _text

__all__ = [
    "INVITE_TTL_MAX_S",
    "INVITE_TTL_MIN_S",
    "MAX_INVITES",
    "MAX_MEMBERS",
    "ROLE_RANK",
    "Invite",
    "MemberRepo",
    "Membership",
    "Role",
    "invite_json",
    "membership_json",
    "parse_invite_token",
    "parse_membership",
]

Role = Literal["owner", "editor", "viewer"]
ROLE_RANK: Final[dict[str, int]] = {"viewer": 1, "editor": 2, "owner": 3}
"""Roles are ordered: each can do everything the ones below it can."""
MAX_MEMBERS: Final = 1000
MAX_INVITES: Final = 100
"""Live invites per world (expired ones are pruned before counting)."""
INVITE_TTL_MIN_S: Final = 60
INVITE_TTL_MAX_S: Final = 30 * 24 * 3600
INVITE_MAX_USES: Final = 1000
_INVITE_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{12}$")
_SECRET_RE: Final = re.compile(r"^[A-Za-z0-9_-]{32}$")
_USER_WORLDS_MAX: Final = 10_000


class Membership(BaseModel):
    """One user's place in one world."""

    model_config = ConfigDict(frozen=True)

    user_id: str = Field(pattern=r"^[A-Za-z0-9_-]{16}$")
    role: Role
    joined: float = Field(ge=0)


class Invite(BaseModel):
    """An invite link's stored record (the secret part of the link is not in it)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{12}$")
    role: Role
    created: float = Field(ge=0)
    expires: float = Field(ge=0)
    created_by: str = Field(pattern=r"^[A-Za-z0-9_-]{16}$")
    max_uses: int = Field(default=0, ge=0, le=INVITE_MAX_USES, description="0 = unlimited")
    token_digest: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)
    uses: int = Field(default=0, ge=0, description="filled in on read from invite-uses")


def parse_invite_token(token: str) -> tuple[str, str, str] | None:
    """``(world id, invite id, secret)`` of a well-formed token, else None (no Redis needed)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    world_id, invite_id, secret = parts
    if not (
        valid_world_id(world_id)
        and _INVITE_ID_RE.fullmatch(invite_id)
        and _SECRET_RE.fullmatch(secret)
    ):
        return None
    return world_id, invite_id, secret


# KEYS: invites, invite-uses, members. ARGV: invite id, token digest, now, user id, new rank
# table as JSON. Returns {status, role, joined}: 0 = no such live invite, 1 = joined or
# upgraded, 2 = already a member with an equal or higher role (nothing consumed), 3 = full.
_REDEEM = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0, '', ''} end
local inv = cjson.decode(raw)
if inv['token_digest'] ~= ARGV[2] then return {0, '', ''} end
local now = tonumber(ARGV[3])
if tonumber(inv['expires']) <= now then return {0, '', ''} end
local max_uses = tonumber(inv['max_uses'] or 0)
local uses = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if max_uses > 0 and uses >= max_uses then return {0, '', ''} end
local ranks = cjson.decode(ARGV[5])
local joined = ARGV[3]
local current = redis.call('HGET', KEYS[3], ARGV[4])
if current then
  local m = cjson.decode(current)
  if ranks[m['role']] >= ranks[inv['role']] then return {2, m['role'], tostring(m['joined'])} end
  joined = tostring(m['joined'])
elseif redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[6]) then
  return {3, '', ''}
end
redis.call('HSET', KEYS[3], ARGV[4], cjson.encode({role = inv['role'], joined = tonumber(joined)}))
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return {1, inv['role'], joined}
"""


def parse_membership(user_id: str, raw: bytes | str) -> Membership | None:
    """A member hash value read back (see :func:`membership_json`), or None if unreadable."""
    try:
        data = json.loads(_text(raw))
        return Membership(user_id=user_id, role=data["role"], joined=float(data["joined"]))
    except (ValueError, KeyError, TypeError, ValidationError):
        return None


class MemberRepo:
    """Memberships and invites of worlds."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._redeem = redis.register_script(_REDEEM)

    # -- members ---------------------------------------------------------------------------

    async def get(self, world_id: str, user_id: str) -> Membership | None:
        """The user's membership of the world, or None."""
        if not (valid_world_id(world_id) and valid_user_id(user_id)):
            return None
        raw = await self.redis.hget(self.keys.members(world_id), user_id)
        return None if raw is None else parse_membership(user_id, raw)

    async def role(self, world_id: str, user_id: str) -> Role | None:
        """The user's role in the world from the member hash, or None."""
        member = await self.get(world_id, user_id)
        return None if member is None else member.role

    async def list_members(self, world_id: str) -> list[Membership]:
        """Every member, earliest first (at most :data:`MAX_MEMBERS`)."""
        raw = await self.redis.hgetall(self.keys.members(world_id))
        members = [parse_membership(_text(u), v) for u, v in raw.items() if valid_user_id(_text(u))]
        return sorted((m for m in members if m is not None), key=lambda m: (m.joined, m.user_id))

    async def add(self, world_id: str, user_id: str, role: Role) -> Membership:
        """Make the user a member with ``role`` (replacing any role; the creator's path)."""
        key = self.keys.members(world_id)
        existing = await self.get(world_id, user_id)
        if existing is None and await self.redis.hlen(key) >= MAX_MEMBERS:
            raise TooManyError("this world has too many members")
        member = Membership(
            user_id=user_id, role=role, joined=existing.joined if existing else time.time()
        )
        await self.redis.hset(key, user_id, membership_json(member))
        await self.redis.zadd(self.keys.user_worlds(user_id), {world_id: member.joined})
        return member

    async def set_role(self, world_id: str, user_id: str, role: Role) -> Membership | None:
        """Change an existing member's role; None if the user is not a member."""
        existing = await self.get(world_id, user_id)
        if existing is None:
            return None
        member = existing.model_copy(update={"role": role})
        await self.redis.hset(self.keys.members(world_id), user_id, membership_json(member))
        return member

    async def remove(self, world_id: str, user_id: str) -> bool:
        """Remove the user from the world; False if they were not a member."""
        if not (valid_world_id(world_id) and valid_user_id(user_id)):
            return False
        removed = await self.redis.hdel(self.keys.members(world_id), user_id)
        await self.redis.zrem(self.keys.user_worlds(user_id), world_id)
        return bool(removed)

    async def world_ids(self, user_id: str) -> list[str]:
        """Ids of worlds the user may belong to, newest membership first (a candidate list:
        check each against :meth:`get`)."""
        if not valid_user_id(user_id):
            return []
        raw = await self.redis.zrevrange(self.keys.user_worlds(user_id), 0, _USER_WORLDS_MAX - 1)
        ids = [_text(w) for w in raw if isinstance(w, bytes | str)]
        return [w for w in ids if valid_world_id(w)]

    async def forget_world(self, world_id: str) -> None:
        """Drop the world from its members' indexes (call before deleting the world's keys)."""
        raw = await self.redis.hkeys(self.keys.members(world_id))
        users = [u for u in (_text(k) for k in raw) if valid_user_id(u)]
        if users:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user_id in users:
                    pipe.zrem(self.keys.user_worlds(user_id), world_id)
                await pipe.execute()

    # -- invites ---------------------------------------------------------------------------

    async def create_invite(
        self, world_id: str, *, role: Role, ttl_s: int, created_by: str, max_uses: int = 0
    ) -> tuple[Invite, str]:
        """A new invite and its token (shown once: only the secret's digest is kept)."""
        if not INVITE_TTL_MIN_S <= ttl_s <= INVITE_TTL_MAX_S:
            raise ValueError("invite lifetime out of bounds")
        if len(await self.invites(world_id)) >= MAX_INVITES:
            raise TooManyError("this world has too many open invites")
        secret = secrets.token_urlsafe(24)
        now = time.time()
        invite = Invite(
            id=secrets.token_urlsafe(9),
            role=role,
            created=now,
            expires=now + ttl_s,
            created_by=created_by,
            max_uses=max_uses,
            token_digest=digest(secret),
        )
        await self.redis.hset(self.keys.invites(world_id), invite.id, invite_json(invite))
        return invite, f"{world_id}.{invite.id}.{secret}"

    async def invites(self, world_id: str) -> list[Invite]:
        """Live invites, oldest first; expired and used-up ones are deleted on the way."""
        key = self.keys.invites(world_id)
        raw = await self.redis.hgetall(key)
        uses_raw = await self.redis.hgetall(self.keys.invite_uses(world_id))
        uses = {_text(k): int(_text(v)) for k, v in uses_raw.items() if _text(v).isdigit()}
        now = time.time()
        live: list[Invite] = []
        dead: list[str] = []
        for field, value in raw.items():
            invite_id = _text(field)
            try:
                invite = Invite.model_validate(
                    {**json.loads(_text(value)), "uses": uses.get(invite_id, 0)}
                )
            except (ValueError, ValidationError):
                dead.append(invite_id)
                continue
            used_up = invite.max_uses and invite.uses >= invite.max_uses
            if invite.expires <= now or used_up:
                dead.append(invite_id)
            else:
                live.append(invite)
        if dead:
            await self.redis.hdel(key, *dead)
            await self.redis.hdel(self.keys.invite_uses(world_id), *dead)
        return sorted(live, key=lambda i: (i.created, i.id))

    async def revoke_invite(self, world_id: str, invite_id: str) -> bool:
        """Delete an invite; False if there was none with this id."""
        if not _INVITE_ID_RE.fullmatch(invite_id):
            return False
        removed = await self.redis.hdel(self.keys.invites(world_id), invite_id)
        await self.redis.hdel(self.keys.invite_uses(world_id), invite_id)
        return bool(removed)

    async def peek_invite(self, token: str) -> tuple[str, Invite] | None:
        """The world id and live invite a token names, without accepting it; else None."""
        parsed = parse_invite_token(token)
        if parsed is None:
            return None
        world_id, invite_id, secret = parsed
        for invite in await self.invites(world_id):
            if invite.id == invite_id and hmac.compare_digest(invite.token_digest, digest(secret)):
                return world_id, invite
        return None

    async def redeem(self, token: str, user_id: str) -> tuple[str, Membership, bool] | None:
        """Accept an invite: ``(world id, membership, changed)``; None for a bad, expired,
        revoked or used-up token. Never lowers an existing role (then ``changed`` is False)."""
        parsed = parse_invite_token(token)
        if parsed is None or not valid_user_id(user_id):
            return None
        world_id, invite_id, secret = parsed
        status, role, joined = await self._redeem(
            keys=[
                self.keys.invites(world_id),
                self.keys.invite_uses(world_id),
                self.keys.members(world_id),
            ],
            args=[
                invite_id,
                digest(secret),
                repr(time.time()),
                user_id,
                json.dumps(ROLE_RANK),
                MAX_MEMBERS,
            ],
        )
        code = int(status)
        if code == 3:
            raise TooManyError("this world has too many members")
        if code not in (1, 2):
            return None
        member = Membership(
            user_id=user_id, role=cast(Role, _text(role)), joined=float(_text(joined))
        )
        if code == 1:
            await self.redis.zadd(self.keys.user_worlds(user_id), {world_id: member.joined})
        return world_id, member, code == 1


def membership_json(member: Membership) -> str:
    """A member hash value: ``{"role", "joined"}`` JSON (the user id is the hash field)."""
    return json.dumps({"role": member.role, "joined": member.joined})


def invite_json(invite: Invite) -> str:
    """An invite hash value: the stored record as JSON, without ``uses`` (kept in invite-uses)."""
    return json.dumps(invite.model_dump(exclude={"uses"}))
