"""``/api/auth``: registration and login rules, the session cookie, logout, TTLs, rate limits,
and the timing-oracle guard (counted verifies, not timings)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from tests.security.conftest import PASSWORD, ClientFactory, SecClient, another, signed_in
from worldgen.store.ratelimit import Limit, RateLimits
from worldgen.web.auth.passwords import Passwords
from worldgen.web.auth.sessions import COOKIE_NAME

pytestmark = pytest.mark.anyio


class CountingArgon2(Argon2Hasher):
    """argon2id that counts how often it verifies (the timing-oracle guard is "always once")."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifies = 0

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        self.verifies += 1
        return super().verify(password, hash)


def token_of(client: SecClient) -> str:
    token = client.cookies.get(COOKIE_NAME)
    assert token is not None
    return token


async def register(client: SecClient, username: str, password: str = PASSWORD) -> int:
    response = await client.post(
        "/api/auth/register", json={"username": username, "password": password}
    )
    return response.status_code


async def test_register_signs_in_with_a_hardened_cookie(client: SecClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"username": "Anna", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "Anna"
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", body["id"])
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; tests/security/test_tls.py checks TLS
    assert response.headers["cache-control"] == "no-store"
    assert len(token_of(client)) >= 22  # >= 128 bits of base64
    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json() == body


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("ab", 422),
        ("abc", 201),
        ("a" * 32, 201),
        ("a" * 33, 422),
        ("bad name", 422),
        ("ä" * 5, 422),
    ],
)
async def test_username_bounds(client: SecClient, username: str, status: int) -> None:
    assert await register(client, username) == status


@pytest.mark.parametrize(
    ("password", "status"),
    [("x" * 7, 422), ("x" * 8, 201), ("x" * 1024, 201), ("x" * 1025, 422), ("é" * 8, 201)],
)
async def test_password_bounds(client: SecClient, password: str, status: int) -> None:
    assert await register(client, "pw-user", password) == status


async def test_usernames_are_unique_in_any_letter_case(client: SecClient) -> None:
    assert await register(client, "Berta") == 201
    other = await another(client)
    for name in ("berta", "BERTA", "Berta"):
        response = await other.post(
            "/api/auth/register", json={"username": name, "password": PASSWORD}
        )
        assert response.status_code == 409
        assert response.json() == {"detail": "this username is taken"}
    login = await other.post("/api/auth/login", json={"username": "bErTa", "password": PASSWORD})
    assert login.status_code == 200


async def test_bad_bodies_are_422(client: SecClient) -> None:
    for body in (
        b"{",
        b"[]",
        b'{"username": "anna"}',
        b'{"username": "anna", "password": "12345678", "admin": true}',
        b'{"username": 5, "password": "12345678"}',
    ):
        response = await client.post(
            "/api/auth/register", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, body
    response = await client.post("/api/auth/login", json={"username": "", "password": "x"})
    assert response.status_code == 422


async def test_login_wrong_password_and_unknown_user_look_the_same(client: SecClient) -> None:
    assert await register(client, "carla") == 201
    anon = await another(client)
    wrong = await anon.post("/api/auth/login", json={"username": "carla", "password": "nope-nope"})
    unknown = await anon.post("/api/auth/login", json={"username": "nobody", "password": "x"})
    malformed = await anon.post("/api/auth/login", json={"username": "no body!", "password": "x"})
    for response in (wrong, unknown, malformed):
        assert response.status_code == 401
        assert response.json() == {"detail": "wrong username or password"}
        assert "set-cookie" not in response.headers
    assert (await anon.get("/api/auth/me")).status_code == 401


async def test_every_login_runs_exactly_one_verify(make_client: ClientFactory) -> None:
    hasher = CountingArgon2()
    client = await make_client(passwords=Passwords(PasswordHash((hasher,))))
    assert await register(client, "dora") == 201
    anon = await another(client)
    cases = [
        ("dora", PASSWORD, 200),
        ("dora", "wrong password", 401),
        ("nobody-here", PASSWORD, 401),  # unknown user: still one verify
        ("not a valid name!", PASSWORD, 401),  # not even a possible name: still one verify
    ]
    for username, password, status in cases:
        before = hasher.verifies
        response = await anon.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == status
        assert hasher.verifies - before == 1, username


async def test_the_dummy_hash_costs_what_a_real_one_costs() -> None:
    passwords = Passwords()  # the production parameters
    real = await passwords.hash(PASSWORD)
    dummy = await passwords.dummy_hash()
    assert real.startswith("$argon2id$")
    assert real.rsplit("$", 2)[0] == dummy.rsplit("$", 2)[0]  # same variant, version, m, t, p
    assert await passwords.verify(PASSWORD, real) == (True, None)
    assert await passwords.verify(PASSWORD, None) == (False, None)
    assert await passwords.verify(PASSWORD, "not a hash") == (False, None)


async def test_weaker_hashes_are_upgraded_on_login(make_client: ClientFactory) -> None:
    client = await make_client()
    assert await register(client, "eddie") == 201
    security = client.security
    record = await security.users.by_username("eddie")
    assert record is not None
    weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=512, parallelism=1),))
    await security.users.set_password_hash(record.id, weak.hash(PASSWORD))
    response = await client.post(
        "/api/auth/login", json={"username": "eddie", "password": PASSWORD}
    )
    assert response.status_code == 200
    upgraded = await security.users.by_username("eddie")
    assert upgraded is not None
    assert "m=1024" in upgraded.password_hash


async def test_logout_ends_the_session_and_the_old_cookie_is_refused(client: SecClient) -> None:
    assert await register(client, "fritz") == 201
    token = token_of(client)
    response = await client.post("/api/auth/logout")
    assert response.status_code == 204
    assert (
        'wg_session=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )
    replay = await another(client)
    replay.cookies.set(COOKIE_NAME, token)
    assert (await replay.get("/api/auth/me")).status_code == 401
    assert (await client.post("/api/auth/logout")).status_code == 204  # idempotent


async def test_login_starts_a_fresh_session_and_ends_the_previous_one(client: SecClient) -> None:
    assert await register(client, "gina") == 201
    first = token_of(client)
    response = await client.post("/api/auth/login", json={"username": "gina", "password": PASSWORD})
    assert response.status_code == 200
    second = token_of(client)
    assert second != first
    replay = await another(client)
    replay.cookies.set(COOKIE_NAME, first)
    assert (await replay.get("/api/auth/me")).status_code == 401
    assert (await client.get("/api/auth/me")).status_code == 200


async def test_sessions_expire_after_their_ttl(make_client: ClientFactory) -> None:
    client = await make_client(session_idle_s=1, session_max_s=1)
    assert await register(client, "hans") == 201
    assert (await client.get("/api/auth/me")).status_code == 200
    await asyncio.sleep(1.3)
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_forged_cookies_are_anonymous(client: SecClient) -> None:
    for forged in ("x", "A" * 43, "../../" * 8, "a" * 4000):
        client.cookies.set(COOKIE_NAME, forged)
        assert (await client.get("/api/auth/me")).status_code == 401
        client.cookies.clear()


async def test_password_change_requires_the_current_one_and_ends_other_sessions(
    client: SecClient,
) -> None:
    here = await signed_in(client, "ines")
    there = await another(client)
    assert (
        await there.post("/api/auth/login", json={"username": "ines", "password": PASSWORD})
    ).status_code == 200
    wrong = await here.post(
        "/api/auth/password",
        json={"current_password": "wrong-wrong", "new_password": "new password 1"},
    )
    assert wrong.status_code == 403
    short = await here.post(
        "/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert short.status_code == 422
    ok = await here.post(
        "/api/auth/password", json={"current_password": PASSWORD, "new_password": "new password 1"}
    )
    assert ok.status_code == 204
    assert (await here.get("/api/auth/me")).status_code == 200
    assert (await there.get("/api/auth/me")).status_code == 401
    anon = await another(client)
    old = await anon.post("/api/auth/login", json={"username": "ines", "password": PASSWORD})
    assert old.status_code == 401
    new = await anon.post(
        "/api/auth/login", json={"username": "ines", "password": "new password 1"}
    )
    assert new.status_code == 200
    assert (
        await anon.post(
            "/api/auth/password", json={"current_password": "x", "new_password": "y" * 8}
        )
    ).status_code == 403
    nobody = await another(client)
    assert (
        await nobody.post(
            "/api/auth/password", json={"current_password": "x", "new_password": "y" * 8}
        )
    ).status_code == 401


# --- rate limits -------------------------------------------------------------------------------


def _limits(**limits: Limit) -> RateLimits:
    return RateLimits(**limits)


def _retry_after(headers: httpx.Headers) -> int:
    value = headers.get("retry-after", "")
    assert value.isdigit(), value
    return int(value)


async def test_login_limit_per_account_at_n_and_n_plus_one(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits=_limits(login_account=Limit(count=3, window_s=60)))
    assert await register(client, "jana") == 201
    anon = await another(client)
    for _ in range(3):
        r = await anon.post("/api/auth/login", json={"username": "JANA", "password": "wrong-pw"})
        assert r.status_code == 401
    r = await anon.post("/api/auth/login", json={"username": "jana", "password": PASSWORD})
    assert r.status_code == 429  # even the right password: the account is cooling down
    wait = _retry_after(r.headers)
    assert 1 <= wait <= 60
    # the message says when to retry too (a person reads it, not the header)
    assert r.json() == {"detail": f"too many requests; retry in {wait} s"}
    # unknown names are limited exactly the same way (no enumeration through the limit)
    for _ in range(3):
        r = await anon.post("/api/auth/login", json={"username": "ghost", "password": "x"})
        assert r.status_code == 401
    r = await anon.post("/api/auth/login", json={"username": "ghost", "password": "x"})
    assert r.status_code == 429


async def test_a_successful_login_resets_the_account_counter(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits=_limits(login_account=Limit(count=3, window_s=60)))
    assert await register(client, "karl") == 201
    anon = await another(client)
    for _ in range(2):
        r = await anon.post("/api/auth/login", json={"username": "karl", "password": "wrong-pw"})
        assert r.status_code == 401
    assert (
        await anon.post("/api/auth/login", json={"username": "karl", "password": PASSWORD})
    ).status_code == 200
    for _ in range(3):
        r = await anon.post("/api/auth/login", json={"username": "karl", "password": "wrong-pw"})
        assert r.status_code == 401


async def test_login_limit_per_address(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits=_limits(login_address=Limit(count=4, window_s=60)))
    for i in range(4):
        r = await client.post("/api/auth/login", json={"username": f"user{i}", "password": "x"})
        assert r.status_code == 401
    r = await client.post("/api/auth/login", json={"username": "user9", "password": "x"})
    assert r.status_code == 429
    assert 1 <= _retry_after(r.headers) <= 60


async def test_registration_limit_per_address(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits=_limits(register_address=Limit(count=2, window_s=60)))
    assert await register(client, "reg1") == 201
    assert await register(client, "reg2") == 201
    r = await client.post("/api/auth/register", json={"username": "reg3", "password": PASSWORD})
    assert r.status_code == 429
    assert 1 <= _retry_after(r.headers) <= 60
    assert await client.security.users.by_username("reg3") is None


async def test_no_password_or_token_reaches_the_log(
    client: SecClient, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cret-Passphrase-XYZ"
    assert await register(client, "logan", secret) == 201
    token = token_of(client)
    await client.post("/api/auth/login", json={"username": "logan", "password": secret + "!"})
    await client.post("/api/auth/login", json={"username": "logan", "password": secret})
    await client.post("/api/auth/logout")
    out, err = capfd.readouterr()
    assert secret not in out + err
    assert token not in out + err


async def test_pages_say_whether_the_visitor_is_signed_in(client: SecClient) -> None:
    """Page data carries ``signed_in``, so a signed-out page never has to ask /api/auth/me
    (and log a red 401 in the console)."""
    member = await signed_in(client, "pagereader")
    world = await client.app.state.store.worlds.create(  # no generation needed for this test
        name="Paged", tileset="terrain", kind="tiled", seed=1
    )
    pages = ("/", f"/worlds/{world.id}", "/login", "/invite", "/worlds/AAAAAAAAAAAA")
    anonymous = await another(client)
    for who, expected in ((anonymous, "false"), (member, "true")):
        for path in pages:
            page = await who.get(path)
            assert page.status_code in (200, 404), path
            assert f'data-signed-in="{expected}"' in page.text, (path, expected)
