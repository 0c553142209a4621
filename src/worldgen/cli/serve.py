"""``worldgen serve``: run the web app under uvicorn.

Flags given on the command line override the environment (``WORLDGEN_*``, ``REDIS_URL``), which
overrides the defaults of :class:`~worldgen.settings.Settings`. Invalid settings are an
:class:`~worldgen.errors.InputError` (exit code 2).

Once the app is ready (Redis connected, workers warmed up) the command prints its URL on stdout.
With ``--ssl-certfile F --ssl-keyfile K`` (or ``WORLDGEN_SSL_CERTFILE``/``_KEYFILE``) it serves
HTTPS and WSS only (see ``docs/security.md`` for deploying behind TLS).
SIGINT (Ctrl+C) and SIGTERM stop it gracefully: requests in flight finish, the worker pool and
the embedded Valkey server (AOF flushed) are stopped, and the exit code is 0. The web stack
(uvicorn, FastAPI, pydantic, Redis) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from worldgen.cli import _gc
from worldgen.cli._io import error, settings_from_flags
from worldgen.errors import InputError

if TYPE_CHECKING:
    import uvicorn

    from worldgen.settings import Settings

__all__ = ["run_serve", "settings_from_args"]

_READY_POLL_S = 0.05
_GRACEFUL_SHUTDOWN_S = 10


def _add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (8000)")
    serve.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="embedded Valkey keeps its data here (data)"
    )
    serve.add_argument("--workers", type=int, metavar="N", help="generation processes, 1..32 (2)")
    serve.add_argument(
        "--ssl-certfile",
        type=Path,
        metavar="FILE",
        help="serve HTTPS and WSS with this certificate (PEM, chain included); needs --ssl-keyfile",
    )
    serve.add_argument(
        "--ssl-keyfile", type=Path, metavar="FILE", help="the certificate's private key (PEM)"
    )
    serve.set_defaults(handler=run_serve)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    flags: dict[str, Any] = {"host": args.host, "port": args.port, "data_dir": args.data_dir}
    flags["workers"] = args.workers
    flags["ssl_certfile"] = getattr(args, "ssl_certfile", None)
    flags["ssl_keyfile"] = getattr(args, "ssl_keyfile", None)
    return settings_from_flags(flags)


def _display_url(host: str, port: int, *, tls: bool = False) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def _server_class() -> type[uvicorn.Server]:
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn's server, minus re-raising the stop signal after a graceful shutdown (which
        would turn a clean stop into a KeyboardInterrupt or a death by SIGTERM)."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            captured: list[int] | None = getattr(self, "_captured_signals", None)
            if captured is not None:
                captured.clear()

    return _Server


async def _serve(server: uvicorn.Server, url: str) -> bool:
    """Run ``server``; print ``url`` once it accepts requests. False if it could not start."""
    import asyncio

    async def run() -> bool:
        try:
            await server.serve()
        except SystemExit:  # uvicorn's way of failing a start-up (it has logged why)
            return False
        return server.started

    task = asyncio.create_task(run())
    while not task.done() and not server.started:
        await asyncio.sleep(_READY_POLL_S)
    if server.started and not server.should_exit:
        print(f"worldgen: serving {url} (Ctrl+C stops)", flush=True)
    return await task


def run_serve(args: argparse.Namespace) -> int:
    """Run the app until SIGINT/SIGTERM; 0 after a clean stop, 1 if it could not start."""
    import asyncio
    import logging

    import uvicorn

    from worldgen.web.app import create_app
    from worldgen.web.http_protocol import ConnectionLimits, RepeatFilter, bounded_protocol
    from worldgen.web.logging import configure_logging, stdlib_handler

    settings = settings_from_args(args)
    configure_logging(settings.log_level, json=settings.log_json)
    root = logging.getLogger()
    root.handlers[:] = [stdlib_handler(sys.stderr, json=settings.log_json)]
    root.setLevel(settings.log_level.upper())
    # accept errors under descriptor exhaustion come thousands of times a second: one line per
    # message and interval (with the count of those dropped) instead of a disk filled with them
    repeats = RepeatFilter()
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(repeats)

    tls = settings.ssl_certfile is not None and settings.ssl_keyfile is not None
    for path in (settings.ssl_certfile, settings.ssl_keyfile):
        if path is not None and not path.is_file():
            raise InputError(f"TLS file not found: {path}")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,  # the app logs each request itself, without query strings
        server_header=False,
        # bounded headers (431/414), header read time (408) and connection caps (503), for
        # plain and TLS serving alike; idle keep-alive connections close after keep_alive_s
        http=bounded_protocol(
            ConnectionLimits(
                header_timeout_s=settings.header_timeout_s,
                max_connections=settings.max_connections,
                max_per_client=settings.max_connections_per_client,
            )
        ),
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        # chat frames are small text; compression state would double the memory per socket,
        # and uvicorn's 16 MiB default frame limit is far above the protocol's 64 KiB
        ws_per_message_deflate=False,
        ws_max_size=1 << 20,
        # TLS (HTTPS and WSS) when a certificate is given; the app then sets Secure cookies
        # and HSTS by itself (it sees the https scheme)
        ssl_certfile=str(settings.ssl_certfile) if tls else None,
        ssl_keyfile=str(settings.ssl_keyfile) if tls else None,
    )
    server = _server_class()(config)
    _gc.start_work()  # a long-lived process: collect as usual from here
    if not asyncio.run(_serve(server, _display_url(settings.host, settings.port, tls=tls))):
        reason = app.state.startup_error or "the server could not start (see the log above)"
        error(reason)
        return 1
    return 0
