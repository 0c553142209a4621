"""Writing an archive into Redis: accounts, then worlds, then members and invites, then chat.

A restore without ``force`` needs an empty target; with ``force`` the archive is merged in and is
the truth about everything it archived. Running the same restore twice gives the same result.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from worldgen.store.backup.dump import BATCH, account_ids
from worldgen.store.backup.records import (
    Archive,
    BackupError,
    ChatEntry,
    ChatLog,
    RestoreReport,
)
from worldgen.store.edits import EditEntry, EditStore
from worldgen.store.keys import Keys
from worldgen.store.members import MemberRepo, invite_json, membership_json
from worldgen.store.models import ModelRepo
from worldgen.store.replies import text as _text
from worldgen.store.sessions import Revocations, SessionStore
from worldgen.store.users import UserRecord, UserRepo, normalize_username
from worldgen.store.worlds import WorldRecord, WorldRepo

CHAT_MAXLEN_DEFAULT: Final = 10_000
"""Entries a restore keeps per world when not told otherwise (the chat stream's default bound)."""


async def load(
    redis: Redis,
    keys: Keys,
    archive: Archive,
    *,
    force: bool,
    chat_maxlen: int = CHAT_MAXLEN_DEFAULT,
) -> RestoreReport:
    """Write the archive: accounts, then worlds (oldest first), then members, then chat.

    Without ``force`` the target must hold no world and no account (:class:`BackupError`
    otherwise; nothing written). With ``force`` the archive is merged in, and it is the truth
    about everything it archived:

    - Worlds replace those with the same id; a replaced world whose content differs (tileset,
      kind or seed) loses every other key first, so no stale tile survives. Others are kept.
    - Accounts replace those with the same id (their sessions are ended: a restore may bring
      back an old password). An archived username held by another account of the target
      (in any letter case) is refused before anything is written.
    - If the archive has a ``members`` section, each archived world's members and invites are
      replaced by the archive's (none, for a world it has no record for). Likewise ``chat``:
      each archived world's stream is replaced by its archived entries, with their ids.

    Sections the archive does not have (a worlds-only archive) are left alone. At most
    ``chat_maxlen`` entries, the newest, are restored per world (the stream's bound). Running
    the same restore twice gives the same result.
    """
    if chat_maxlen < 1:
        raise ValueError("chat_maxlen must be positive")
    repo = WorldRepo(redis, keys)
    existing = await repo.count()
    accounts = bool(await account_ids(redis, keys, first_only=True))
    if (existing or accounts) and not force:
        held = [
            f"{existing} world{'s' if existing != 1 else ''}" if existing else "",
            "accounts" if accounts else "",
        ]
        raise BackupError(
            f"the target already holds {' and '.join(h for h in held if h)}; restore into an "
            "empty Redis, or pass --force to merge (archived worlds and accounts replace those "
            "with the same id, the others are kept)"
        )
    users = archive.users or ()
    if force and users and accounts:
        await _refuse_username_conflicts(redis, keys, users)

    replaced_users = await _load_users(redis, keys, users) if users else []

    members = MemberRepo(redis, keys)
    replaced = 0
    archived = {record.id for record in archive.worlds}
    for record in archive.worlds:
        if force and await redis.exists(keys.world(record.id)):
            old = await repo.get(record.id)
            if old is None or _content(old) != _content(record):
                await members.forget_world(record.id)
                await repo.delete(record.id)
                replaced += 1
        await repo.put(record)
    kept = 0
    if force and existing:
        kept = await repo.count() - len(archived)

    memberships = invites = 0
    if archive.members is not None:
        memberships, invites = await _load_members(redis, keys, archive, force=force)
    chat = dropped = 0
    if archive.chat is not None:
        chat, dropped = await _load_chat(
            redis, keys, archive.worlds, archive.chat, force=force, maxlen=chat_maxlen
        )

    edit_ops = 0
    if archive.edits is not None:  # each archived world's edits become the archive's
        by_world: dict[str, list[EditEntry]] = {record.id: [] for record in archive.worlds}
        for entry in archive.edits:
            by_world[entry.world].append(entry)
        edit_store = EditStore(redis, keys)
        for world_id, entries in by_world.items():
            edit_ops += await edit_store.import_world(world_id, entries)

    if archive.models is not None:  # uploaded models, joined from their parts
        model_repo = ModelRepo(redis, keys)
        joined: list[bytes] = []
        for piece in archive.models:
            joined.append(base64.b64decode(piece.data))
            if piece.part + 1 == piece.parts:
                await model_repo.restore(piece.model, b"".join(joined), list(piece.worlds))
                joined = []

    signed_out = 0
    if replaced_users:
        sessions = SessionStore(redis, keys, Revocations(redis, keys), idle_s=1, max_s=1)
        for user_id in replaced_users:
            signed_out += await sessions.revoke_all(user_id)
    return RestoreReport(
        restored=len(archive.worlds),
        replaced=replaced,
        kept=max(kept, 0),
        users=len(users),
        memberships=memberships,
        invites=invites,
        chat=chat,
        chat_dropped=dropped,
        edit_ops=edit_ops,
        signed_out=signed_out,
    )


def _content(record: WorldRecord) -> tuple[str, str, int]:
    """The fields a world's tiles depend on."""
    return (record.tileset, record.kind, record.seed)


async def _refuse_username_conflicts(redis: Redis, keys: Keys, users: Sequence[UserRecord]) -> None:
    """BackupError if an archived username is held by another live account of the target."""
    repo = UserRepo(redis, keys)
    conflicts: list[str] = []
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for user in batch:
                pipe.get(keys.username(normalize_username(user.username)))
            holders = await pipe.execute()
        for user, holder in zip(batch, holders, strict=True):
            if holder is None or _text(holder) == user.id:
                continue
            other = await repo.get(_text(holder))
            if other is not None and normalize_username(other.username) == normalize_username(
                user.username
            ):
                conflicts.append(user.id)
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
        raise BackupError(
            f"{len(conflicts)} archived account(s) ({shown}) have a username that another "
            "account of the target holds (in any letter case); nothing written. Restore into "
            "an empty Redis instead"
        )


async def _load_users(redis: Redis, keys: Keys, users: Sequence[UserRecord]) -> list[str]:
    """Write accounts and claim their usernames; the ids of accounts that existed before."""
    replaced: list[str] = []
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for user in batch:
                pipe.hget(keys.user(user.id), "username")
            old_names = await pipe.execute()
        stale: list[tuple[str, str]] = []
        for user, old in zip(batch, old_names, strict=True):
            if old is None:
                continue
            replaced.append(user.id)
            old_name = normalize_username(_text(old))
            if old_name != normalize_username(user.username):
                stale.append((keys.username(old_name), user.id))
        # Records first, then their name claims (an account's record and its name live in
        # different cluster slots, so they cannot share a transaction): a claimed name always
        # points at a written record; a failure in between leaves records without their name,
        # which the same restore, run again, completes.
        async with redis.pipeline(transaction=False) as pipe:
            for user in batch:
                pipe.delete(keys.user(user.id))
                pipe.hset(keys.user(user.id), mapping=user.to_hash())  # type: ignore[arg-type]
            await pipe.execute()
        async with redis.pipeline(transaction=False) as pipe:
            for user in batch:
                pipe.set(keys.username(normalize_username(user.username)), user.id)
            await pipe.execute()
        for key, user_id in stale:  # the account's former name, if it still points here
            holder = await redis.get(key)
            if holder is not None and _text(holder) == user_id:
                await redis.delete(key)
    return replaced


async def _load_members(
    redis: Redis, keys: Keys, archive: Archive, *, force: bool
) -> tuple[int, int]:
    """Replace each archived world's members and invites with the archive's."""
    by_world = {access.world: access for access in archive.members or ()}
    repo = MemberRepo(redis, keys)
    memberships = invites = 0
    for world in archive.worlds:
        access = by_world.get(world.id)
        if access is None and not force:
            continue  # an empty target: nothing to clear
        if force:
            await repo.forget_world(world.id)  # the old members' "my worlds" entries
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.members(world.id), keys.invites(world.id), keys.invite_uses(world.id))
            if access is not None and access.members:
                pipe.hset(
                    keys.members(world.id),
                    mapping={m.user_id: membership_json(m) for m in access.members},
                )
            if access is not None and access.invites:
                pipe.hset(
                    keys.invites(world.id),
                    mapping={i.id: invite_json(i) for i in access.invites},
                )
                used = {i.id: i.uses for i in access.invites if i.uses}
                if used:
                    pipe.hset(keys.invite_uses(world.id), mapping=used)  # type: ignore[arg-type]
            await pipe.execute()
        if access is not None and access.members:
            async with redis.pipeline(transaction=False) as pipe:
                for m in access.members:
                    pipe.zadd(keys.user_worlds(m.user_id), {world.id: m.joined})
                await pipe.execute()
            memberships += len(access.members)
        invites += len(access.invites) if access is not None else 0
    return memberships, invites


async def _load_chat(
    redis: Redis,
    keys: Keys,
    worlds: Sequence[WorldRecord],
    chat: ChatLog,
    *,
    force: bool,
    maxlen: int,
) -> tuple[int, int]:
    """Re-add each world's entries with their ids, oldest first, keeping the newest ``maxlen``."""
    if force:  # the archive is the truth: archived worlds without entries have none
        empty = [w.id for w in worlds if w.id not in chat.counts]
        for start in range(0, len(empty), BATCH):
            await redis.delete(*(keys.chat(w) for w in empty[start : start + BATCH]))
    written = dropped = 0
    world: str | None = None
    skip = 0
    pending: list[ChatEntry] = []

    async def flush() -> None:
        nonlocal written
        if not pending:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for entry in pending:
                pipe.xadd(
                    keys.chat(entry.world),
                    {"d": entry.entry.model_dump_json()},
                    id=entry.id,
                    maxlen=maxlen,
                    approximate=True,
                )
            try:
                await pipe.execute()
            except ResponseError as exc:
                raise BackupError(
                    f"the chat of world {pending[-1].world} could not be restored ({exc}); was "
                    "a message posted during the restore? Stop the app and run the same "
                    "restore again with --force"
                ) from None
        written += len(pending)
        pending.clear()

    for entry in chat:
        if entry.world != world:
            await flush()
            world = entry.world
            skip = max(0, chat.counts[world] - maxlen)
            dropped += skip
            await redis.delete(keys.chat(world))
        if skip:
            skip -= 1
            continue
        pending.append(entry)
        if len(pending) >= BATCH:
            await flush()
    await flush()
    return written, dropped
