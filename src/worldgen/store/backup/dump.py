"""Reading a backup out of Redis: worlds, accounts, members and invites, chat streams.

Everything is read with non-blocking scans and pipelined batches of :data:`BATCH` keys. Records
that fail validation are left out with a warning naming ids only (never a username, a hash or a
message), so a damaged key never stops a backup of everything else.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Final

from redis.asyncio import Redis

from worldgen.store.backup.records import (
    ACCESS_INVITES_MAX,
    ACCESS_MEMBERS_MAX,
    MODEL_PART_BYTES,
    Archive,
    ArchivedModelPart,
    ArchivedUser,
    ChatEntry,
    ChatLog,
    DumpReport,
    WorldAccess,
    user_order,
    utc_now,
    world_order,
)
from worldgen.store.chat import PAGE_MAX, ChatStore
from worldgen.store.edits import EditStore
from worldgen.store.keys import Keys, valid_user_id, valid_world_id
from worldgen.store.members import Invite, Membership, parse_membership
from worldgen.store.models import ModelRecord, ModelRepo
from worldgen.store.replies import text as _text
from worldgen.store.users import UserRecord, normalize_username
from worldgen.store.worlds import WorldRecord

BATCH: Final = 500
"""Keys per pipelined round trip, reading and writing."""
_PLACEHOLDER_USER: Final = "0" * 16


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", text)


def _user_key_parts(keys: Keys) -> tuple[str, str]:
    """The text before and after the user id in :meth:`Keys.user` (to scan for accounts)."""
    head, tail = keys.user(_PLACEHOLDER_USER).split(_PLACEHOLDER_USER)
    return head, tail


async def account_ids(redis: Redis, keys: Keys, *, first_only: bool = False) -> list[str]:
    """Ids of every account hash (one non-blocking ``SCAN``; there is no account index)."""
    head, tail = _user_key_parts(keys)
    found: dict[str, None] = {}
    pattern = _glob_escape(head) + "*" + _glob_escape(tail)
    async for raw in redis.scan_iter(match=pattern, count=1000):
        key = _text(raw)
        user_id = key[len(head) : len(key) - len(tail)]
        if valid_user_id(user_id) and keys.user(user_id) == key:
            found[user_id] = None
            if first_only:
                break
    return list(found)


async def dump(redis: Redis, keys: Keys, *, spool: IO[bytes] | None = None) -> DumpReport:
    """Read everything a backup holds: worlds, accounts, members and invites, chat streams.

    Worlds come from the index (ZSCAN, then HGETALL in pipelined batches), accounts from a
    ``SCAN`` for account hashes (kept only if their username still points at them), members and
    invites and chat from the keys of each archived world. Scans do not block the server; on a
    live server the result is not one point in time (a record created meanwhile may or may not
    be in it), but it is consistent: every membership names an archived account, every
    membership and chat entry an archived world.

    Chat entries are written to ``spool`` (a binary temporary file the caller owns and keeps open
    while the archive is used) when given, else held in memory.
    """
    skipped: list[str] = []
    warnings: list[str] = []
    worlds = await _dump_worlds(redis, keys, skipped)
    users = await _dump_users(redis, keys, warnings)
    members = await _dump_members(redis, keys, worlds, {u.id for u in users}, warnings)
    chat = await _dump_chat(redis, keys, worlds, spool, warnings)
    edit_store = EditStore(redis, keys)
    edits = tuple([e for w in worlds for e in await edit_store.export_world(w.id)])
    models = await _dump_models(redis, keys, warnings)
    archive = Archive(
        worlds=worlds,
        users=users,
        members=members,
        chat=chat,
        edits=edits,
        models=models,
        created=utc_now(),
        key_prefix=keys.root.split(":", 1)[0],
    )
    return DumpReport(archive=archive, skipped=tuple(skipped), warnings=tuple(warnings))


async def _dump_models(
    redis: Redis, keys: Keys, warnings: list[str]
) -> tuple[ArchivedModelPart, ...]:
    """Every uploaded model (one non-blocking ``SCAN`` for model records), oldest first, each
    cut into parts of :data:`MODEL_PART_BYTES`."""
    head, tail = keys.model("0" * 64, "meta").split("0" * 64)
    repo = ModelRepo(redis, keys)
    records: list[ModelRecord] = []
    async for raw in redis.scan_iter(match=_glob_escape(head) + "*" + _glob_escape(tail)):
        key = _text(raw)
        record = await repo.get(key[len(head) : len(key) - len(tail)])
        if record is None:
            warnings.append(f"a model record ({key[len(head) : len(head) + 12]}) is unreadable")
        else:
            records.append(record)
    out: list[ArchivedModelPart] = []
    for record in sorted(records, key=lambda r: (r.created, r.id)):
        data = await repo.data(record.id)
        if data is None:
            warnings.append(f"model {record.id[:12]} has no bytes; left out")
            continue
        worlds = tuple(await repo.world_ids(record.id))
        parts = max(1, -(-len(data) // MODEL_PART_BYTES))
        for part in range(parts):
            chunk = data[part * MODEL_PART_BYTES : (part + 1) * MODEL_PART_BYTES]
            out.append(
                ArchivedModelPart(
                    model=record,
                    worlds=worlds,
                    part=part,
                    parts=parts,
                    data=base64.b64encode(chunk).decode(),
                )
            )
    return tuple(out)


async def _dump_worlds(redis: Redis, keys: Keys, skipped: list[str]) -> tuple[WorldRecord, ...]:
    ids: dict[str, None] = {}
    async for member, _score in redis.zscan_iter(keys.worlds_index(), count=1000):
        ids[_text(member)] = None
    worlds: list[WorldRecord] = []
    valid = [i for i in ids if valid_world_id(i)]
    skipped.extend(i for i in ids if not valid_world_id(i))
    for start in range(0, len(valid), BATCH):
        batch = valid[start : start + BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for world_id in batch:
                pipe.hgetall(keys.world(world_id))
            replies = await pipe.execute()
        for world_id, raw in zip(batch, replies, strict=True):
            try:
                if not raw:
                    raise ValueError("no metadata")
                worlds.append(WorldRecord.from_hash(raw))
            except (ValueError, UnicodeDecodeError):  # ValidationError is a ValueError
                skipped.append(world_id)
    return tuple(sorted(worlds, key=world_order))


async def _dump_users(redis: Redis, keys: Keys, warnings: list[str]) -> tuple[UserRecord, ...]:
    ids = await account_ids(redis, keys)
    users: list[UserRecord] = []
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for user_id in batch:
                pipe.hgetall(keys.user(user_id))
            replies = await pipe.execute()
        readable: list[ArchivedUser] = []
        for user_id, raw in zip(batch, replies, strict=True):
            try:
                record = ArchivedUser.from_hash(raw)
                if record.id != user_id:
                    raise ValueError("id does not match its key")
            except (ValueError, UnicodeDecodeError):
                if raw:  # gone since the scan: nothing to say
                    warnings.append(f"account {user_id} is unreadable; left out")
                continue
            readable.append(_archived_user(record))
        async with redis.pipeline(transaction=False) as pipe:
            for record in readable:
                pipe.get(keys.username(normalize_username(record.username)))
            holders = await pipe.execute()
        for record, holder in zip(readable, holders, strict=True):
            if holder is None or _text(holder) != record.id:
                # A crash between writing the account and claiming its name: nobody can log in
                # to it, and archiving it could collide with the name's real holder.
                warnings.append(f"account {record.id} is not reachable by its username; left out")
                continue
            users.append(record)
    return tuple(sorted(users, key=user_order))


def _archived_user(record: UserRecord) -> ArchivedUser:
    """``record`` as an :class:`ArchivedUser` (validated: its hash must be argon2)."""
    if isinstance(record, ArchivedUser):
        return record
    return ArchivedUser.model_validate(record.model_dump())


async def _dump_members(
    redis: Redis,
    keys: Keys,
    worlds: Sequence[WorldRecord],
    user_ids: set[str],
    warnings: list[str],
) -> tuple[WorldAccess, ...]:
    now = time.time()
    out: list[WorldAccess] = []
    for start in range(0, len(worlds), BATCH):
        batch = worlds[start : start + BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for world in batch:
                pipe.hgetall(keys.members(world.id))
                pipe.hgetall(keys.invites(world.id))
                pipe.hgetall(keys.invite_uses(world.id))
            replies = await pipe.execute()
        for i, world in enumerate(batch):
            raw_members, raw_invites, raw_uses = replies[3 * i : 3 * i + 3]
            members = _read_members(world.id, raw_members, user_ids, warnings)
            invites = _read_invites(world.id, raw_invites, raw_uses, now, warnings)
            if len(members) > ACCESS_MEMBERS_MAX:
                warnings.append(
                    f"world {world.id} has {len(members)} members; the latest "
                    f"{len(members) - ACCESS_MEMBERS_MAX} left out"
                )
                members = members[:ACCESS_MEMBERS_MAX]
            if len(invites) > ACCESS_INVITES_MAX:
                warnings.append(
                    f"world {world.id} has {len(invites)} pending invites; the latest "
                    f"{len(invites) - ACCESS_INVITES_MAX} left out"
                )
                invites = invites[:ACCESS_INVITES_MAX]
            if members or invites:
                out.append(
                    WorldAccess(world=world.id, members=tuple(members), invites=tuple(invites))
                )
    return tuple(out)


def _read_members(
    world_id: str, raw: Mapping[Any, Any], user_ids: set[str], warnings: list[str]
) -> list[Membership]:
    members: list[Membership] = []
    for field, value in raw.items():
        member = parse_membership(_text(field), value)
        if member is None:
            warnings.append(f"a membership of world {world_id} is unreadable; left out")
            continue
        if member.user_id not in user_ids:
            warnings.append(
                f"membership of {member.user_id} in world {world_id} left out: "
                "no such account in the backup"
            )
            continue
        members.append(member)
    return sorted(members, key=lambda m: (m.joined, m.user_id))


def _read_invites(
    world_id: str,
    raw: Mapping[Any, Any],
    raw_uses: Mapping[Any, Any],
    now: float,
    warnings: list[str],
) -> list[Invite]:
    uses: dict[str, int] = {}
    for field, value in raw_uses.items():
        text = _text(value)
        if text.isdigit():
            uses[_text(field)] = int(text)
    invites: list[Invite] = []
    for field, value in raw.items():
        invite_id = _text(field)
        try:
            data = json.loads(_text(value))
            if not isinstance(data, dict):
                raise TypeError("not an object")
            invite = Invite.model_validate({**data, "uses": uses.get(invite_id, 0)})
            if invite.id != invite_id:
                raise ValueError("id does not match its field")
        except (ValueError, TypeError):
            warnings.append(f"an invite of world {world_id} is unreadable; left out")
            continue
        if invite.expires <= now or (invite.max_uses and invite.uses >= invite.max_uses):
            continue  # dead: it can never be accepted again
        invites.append(invite)
    return sorted(invites, key=lambda i: (i.created, i.id))


async def _dump_chat(
    redis: Redis,
    keys: Keys,
    worlds: Sequence[WorldRecord],
    spool: IO[bytes] | None,
    warnings: list[str],
) -> ChatLog:
    store = ChatStore(redis, keys)
    held: list[ChatEntry] = []
    counts: dict[str, int] = {}
    gz = (
        gzip.GzipFile(filename="", mode="wb", fileobj=spool, mtime=0, compresslevel=1)
        if spool is not None
        else None
    )
    try:
        for world in worlds:
            invalid_before = store.invalid_entries
            after, n = "0-0", 0
            while True:
                page = await store.read_after(world.id, after, count=PAGE_MAX)
                for item in page.entries:
                    entry = ChatEntry(world=world.id, id=item.stream_id, entry=item.record)
                    if gz is not None:
                        gz.write(entry.model_dump_json().encode() + b"\n")
                    else:
                        held.append(entry)
                    n += 1
                if not page.full or page.last_id is None:
                    break
                after = page.last_id
            if n:
                counts[world.id] = n
            invalid = store.invalid_entries - invalid_before
            if invalid:
                warnings.append(
                    f"{invalid} chat entr{'ies' if invalid != 1 else 'y'} of world {world.id} "
                    "failed validation; left out"
                )
    finally:
        if gz is not None:
            gz.close()  # flushes; the spool itself stays open
    if spool is None:
        items = tuple(held)
        return ChatLog(counts, lambda: iter(items))
    return ChatLog(counts, lambda: _spooled(spool))


def _spooled(spool: IO[bytes]) -> Iterator[ChatEntry]:
    spool.seek(0)
    with gzip.GzipFile(fileobj=spool, mode="rb") as gz:
        for line in gz:
            yield ChatEntry.model_validate_json(line)
