"""Accounts, sessions, memberships, invites, rate limits and the revocation bus on a real Valkey."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import ValkeyHandle
from worldgen.errors import RateLimitedError, TooManyError, UsernameTakenError
from worldgen.store.client import connect
from worldgen.store.keys import Keys
from worldgen.store.members import MAX_INVITES, MemberRepo, parse_invite_token
from worldgen.store.pubsub import PubSub
from worldgen.store.ratelimit import Limit, RateLimiter, RateLimits
from worldgen.store.sessions import Revocations, SessionStore, new_token, session_id
from worldgen.store.users import UserRepo, normalize_username, valid_username

pytestmark = pytest.mark.anyio

WORLD = "world0001"


@pytest.fixture
async def redis(app_redis: dict[str, Any]) -> AsyncIterator[Redis]:
    client = connect(app_redis["redis_url"])  # the shared Valkey, or the cluster
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:12]}")


async def all_keys(redis: Redis, keys: Keys) -> list[str]:
    return [k.decode() async for k in redis.scan_iter(match=f"{keys.root}:*")]


# --- users -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("ab", False),
        ("abc", True),
        ("a" * 32, True),
        ("a" * 33, False),
        ("Al.ice_-9", True),
        ("al ice", False),
        ("ålice", False),
        ("al{ice}", False),
        ("", False),
    ],
)
def test_username_rule(name: str, ok: bool) -> None:
    assert valid_username(name) is ok


async def test_usernames_are_unique_in_any_case_and_never_part_of_a_key(
    redis: Redis, keys: Keys
) -> None:
    users = UserRepo(redis, keys)
    alice = await users.create("Alice.Smith", "$argon2id$fake")
    with pytest.raises(UsernameTakenError):
        await users.create("alice.smith", "$argon2id$fake")
    with pytest.raises(UsernameTakenError):
        await users.create("ALICE.SMITH", "$argon2id$fake")
    assert (await users.by_username("aLiCe.sMiTh")) == alice
    assert await users.get(alice.id) == alice
    assert await users.by_username("bob") is None
    assert await users.by_username("not a name!") is None
    assert await users.get("../../etc/passwd") is None
    names = await all_keys(redis, keys)
    assert names, "the account must be stored"
    assert not [k for k in names if "alice" in k.lower() or "smith" in k.lower()]
    # the loser of the race leaves nothing behind
    assert len([k for k in names if ":meta" in k]) == 1
    assert normalize_username("Alice.Smith") == "alice.smith"


async def test_password_hash_is_replaced_and_usernames_looked_up(redis: Redis, keys: Keys) -> None:
    users = UserRepo(redis, keys)
    a = await users.create("anna", "h1")
    b = await users.create("bert", "h2")
    await users.set_password_hash(a.id, "h3")
    got = await users.get(a.id)
    assert got is not None
    assert got.password_hash == "h3"
    assert "h3" not in repr(got)
    assert await users.usernames([a.id, b.id, "x" * 16, "bad"]) == {a.id: "anna", b.id: "bert"}


# --- sessions ----------------------------------------------------------------------------------


async def test_session_tokens_are_opaque_and_only_their_digest_is_stored(
    redis: Redis, keys: Keys
) -> None:
    store = SessionStore(redis, keys, Revocations(redis, keys), idle_s=60, max_s=120)
    token, session = await store.create("u" * 16, "anna")
    assert len(token) == 43  # 32 random bytes
    assert session_id(token) == session.sid
    assert token not in " ".join(await all_keys(redis, keys))
    assert (await store.get(token)) == session
    assert 0 < await redis.ttl(keys.session(session.sid)) <= 60
    for bad in (None, "", "x", token[:-1], token + "A", "a" * 43, "../" * 15):
        assert await store.get(bad) is None
    assert session_id(new_token()) != session_id(new_token())


async def test_session_idle_expiry_and_absolute_end(redis: Redis, keys: Keys) -> None:
    store = SessionStore(redis, keys, Revocations(redis, keys), idle_s=1, max_s=1)
    token, _ = await store.create("u" * 16, "anna")
    assert await store.get(token) is not None
    await asyncio.sleep(1.2)
    assert await store.get(token) is None
    # the absolute end holds even while the key still lives
    long_idle = SessionStore(redis, keys, Revocations(redis, keys), idle_s=60, max_s=60)
    token, session = await long_idle.create("u" * 16, "anna")
    await redis.hset(keys.session(session.sid), "created", str(time.time() - 61))
    assert await long_idle.get(token) is None
    assert not await redis.exists(keys.session(session.sid))


async def test_revoke_all_keeps_only_the_named_session(redis: Redis, keys: Keys) -> None:
    revocations = Revocations(redis, keys)
    store = SessionStore(redis, keys, revocations, idle_s=60, max_s=60)
    t1, s1 = await store.create("u" * 16, "anna")
    t2, _ = await store.create("u" * 16, "anna")
    t3, _ = await store.create("u" * 16, "anna")
    fired: list[str] = []
    revocations.watch_session(s1.sid, lambda: fired.append("s1"))
    assert await store.revoke_all("u" * 16, keep=s1.sid) == 2
    assert await store.get(t1) is not None
    assert await store.get(t2) is None
    assert await store.get(t3) is None
    assert fired == []
    await store.revoke(s1)
    assert await store.get(t1) is None
    assert fired == ["s1"]


# --- revocation bus ----------------------------------------------------------------------------


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_revocations_reach_other_instances_within_a_second(redis: Redis, keys: Keys) -> None:
    bus = PubSub(redis)
    here, there = Revocations(redis, keys), Revocations(redis, keys, bus)
    bus.start()
    try:
        assert await bus.wait_subscribed(keys.security_events(), 5)
        closed: list[str] = []
        closed_async: list[str] = []

        async def close() -> None:
            closed_async.append("ws")

        unwatch = there.watch_session("a" * 64, lambda: closed.append("ws"))
        there.watch_session("a" * 64, close)
        there.watch_access(WORLD, "u" * 16, lambda: closed.append("access"))
        started = time.monotonic()
        await here.session_revoked("a" * 64)
        await _until(lambda: closed == ["ws"] and closed_async == ["ws"])
        assert time.monotonic() - started < 1.0
        await here.access_changed(WORLD, "u" * 16)
        await _until(lambda: closed == ["ws", "access"])
        unwatch()
        await here.session_revoked("a" * 64)
        await redis.publish(keys.security_events(), b"not json")
        await redis.publish(keys.security_events(), b'{"type": "other"}')
        await asyncio.sleep(0.3)
        assert closed == ["ws", "access"]
    finally:
        await bus.stop()


@pytest.mark.standalone_only("kills the server")
async def test_revocation_listener_resumes_after_a_redis_restart_and_rechecks(
    valkey_server: Callable[[], ValkeyHandle], keys: Keys
) -> None:
    server = valkey_server()
    redis = connect(server.url)
    pubsub = PubSub(redis, backoff_base_s=0.05, backoff_cap_s=0.5)
    try:
        bus = Revocations(redis, keys, pubsub)
        store = SessionStore(redis, keys, bus, idle_s=60, max_s=60)
        _, session = await store.create("u" * 16, "anna")
        pubsub.start()
        assert await pubsub.wait_subscribed(keys.security_events(), 5)
        fired: list[str] = []
        bus.watch_session(session.sid, lambda: fired.append("session"))
        bus.watch_access(WORLD, "u" * 16, lambda: fired.append("access"))
        server.kill()
        await _until(lambda: not pubsub.connected)
        server.restart()
        # the session was deleted while nobody listened: the re-check must notice
        await redis.delete(keys.session(session.sid))
        await _until(lambda: bus.resubscriptions >= 1, timeout=15)
        await _until(lambda: "session" in fired and "access" in fired)
        assert pubsub.reconnects >= 1
    finally:
        await pubsub.stop()
        await redis.aclose()


# --- rate limits -------------------------------------------------------------------------------


async def test_rate_limit_allows_n_and_refuses_n_plus_one_with_retry_after(
    redis: Redis, keys: Keys
) -> None:
    limiter = RateLimiter(redis, keys, RateLimits(chat=Limit(count=3, window_s=30)))
    for _ in range(3):
        await limiter.hit("chat", "someone")
    with pytest.raises(RateLimitedError) as caught:
        await limiter.hit("chat", "someone")
    assert caught.value.retry_after is not None
    assert 1 <= caught.value.retry_after <= 30
    assert f"retry in {caught.value.retry_after} s" in caught.value.message
    await limiter.hit("chat", "someone else")  # subjects are separate
    await limiter.reset("chat", "someone")
    await limiter.hit("chat", "someone")
    names = await all_keys(redis, keys)
    assert not [k for k in names if "someone" in k]
    for name in names:
        assert 0 < await redis.ttl(name) <= 30, "a counter without TTL would lock out forever"


async def test_rate_limit_window_ends(redis: Redis, keys: Keys) -> None:
    limiter = RateLimiter(redis, keys, RateLimits(chat=Limit(count=1, window_s=1)))
    await limiter.hit("chat", "x")
    with pytest.raises(RateLimitedError) as caught:
        await limiter.hit("chat", "x")
    assert caught.value.retry_after == 1
    await asyncio.sleep(1.1)
    await limiter.hit("chat", "x")


# --- members and invites -----------------------------------------------------------------------


async def test_members_roles_and_index(redis: Redis, keys: Keys) -> None:
    repo = MemberRepo(redis, keys)
    a, b = "a" * 16, "b" * 16
    await repo.add(WORLD, a, "owner")
    await repo.add(WORLD, b, "viewer")
    assert await repo.role(WORLD, a) == "owner"
    assert await repo.role(WORLD, b) == "viewer"
    assert await repo.role(WORLD, "c" * 16) is None
    assert await repo.role("bad id!", a) is None
    changed = await repo.set_role(WORLD, b, "editor")
    assert changed is not None
    assert changed.role == "editor"
    assert await repo.set_role(WORLD, "c" * 16, "editor") is None
    assert [m.user_id for m in await repo.list_members(WORLD)] == [a, b]
    assert await repo.world_ids(b) == [WORLD]
    assert await repo.remove(WORLD, b)
    assert not await repo.remove(WORLD, b)
    assert await repo.world_ids(b) == []
    await repo.forget_world(WORLD)
    assert await repo.world_ids(a) == []


async def test_invites_redeem_expire_revoke_and_never_lower_a_role(
    redis: Redis, keys: Keys
) -> None:
    repo = MemberRepo(redis, keys)
    owner, guest, editor = "o" * 16, "g" * 16, "e" * 16
    await repo.add(WORLD, editor, "editor")
    invite, token = await repo.create_invite(WORLD, role="viewer", ttl_s=60, created_by=owner)
    assert parse_invite_token(token) is not None
    assert token.split(".")[2] not in " ".join(
        str(v) for v in (await redis.hgetall(keys.invites(WORLD))).values()
    )
    assert (await repo.peek_invite(token)) == (WORLD, invite)
    joined = await repo.redeem(token, guest)
    assert joined is not None
    assert joined[0] == WORLD
    assert joined[1].role == "viewer"
    assert joined[2]
    assert await repo.world_ids(guest) == [WORLD]
    # an editor opening a viewer link stays an editor, and uses nothing
    kept = await repo.redeem(token, editor)
    assert kept is not None
    assert kept[1].role == "editor"
    assert not kept[2]
    assert [i.uses for i in await repo.invites(WORLD)] == [1]
    # forged, malformed and revoked tokens
    w, i, secret = token.split(".")
    for bad in (f"{w}.{i}.{'A' * 32}", f"{w}.{i}", "x", f"other001.{i}.{secret}", token + "x"):
        assert await repo.redeem(bad, "z" * 16) is None
    assert await repo.revoke_invite(WORLD, invite.id)
    assert not await repo.revoke_invite(WORLD, invite.id)
    assert await repo.redeem(token, "z" * 16) is None


async def test_invite_expiry_and_use_limit(redis: Redis, keys: Keys) -> None:
    repo = MemberRepo(redis, keys)
    _, once = await repo.create_invite(
        WORLD, role="editor", ttl_s=60, created_by="o" * 16, max_uses=1
    )
    assert await repo.redeem(once, "a" * 16) is not None
    assert await repo.redeem(once, "b" * 16) is None
    assert await repo.invites(WORLD) == []  # used up: pruned
    invite, late = await repo.create_invite(WORLD, role="viewer", ttl_s=60, created_by="o" * 16)
    raw = invite.model_dump(exclude={"uses"})
    raw["expires"] = time.time() - 1
    await redis.hset(keys.invites(WORLD), invite.id, json.dumps(raw))
    assert await repo.redeem(late, "c" * 16) is None
    assert await repo.invites(WORLD) == []
    with pytest.raises(ValueError, match="lifetime"):
        await repo.create_invite(WORLD, role="viewer", ttl_s=59, created_by="o" * 16)


async def test_invite_count_is_bounded(redis: Redis, keys: Keys) -> None:
    repo = MemberRepo(redis, keys)
    for _ in range(MAX_INVITES):
        await repo.create_invite(WORLD, role="viewer", ttl_s=60, created_by="o" * 16)
    with pytest.raises(TooManyError):
        await repo.create_invite(WORLD, role="viewer", ttl_s=60, created_by="o" * 16)


async def test_world_keys_share_the_hash_tag(keys: Keys) -> None:
    tag = "{w:" + WORLD + "}"
    for name in (keys.members(WORLD), keys.invites(WORLD), keys.invite_uses(WORLD)):
        assert tag in name
    assert "{u:" + "a" * 16 + "}" in keys.user("a" * 16)
    with pytest.raises(ValueError, match="user id"):
        keys.user("alice")
    with pytest.raises(ValueError, match="session"):
        keys.session("alice")
    with pytest.raises(ValueError, match="bucket"):
        keys.rate("Bad Bucket", "x")
