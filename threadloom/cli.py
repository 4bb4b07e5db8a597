"""`threadloom serve`, `threadloom worker` and `threadloom migrate`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import socket
import sys
import time

from threadloom import __version__
from threadloom.config import _env, add_serve_arguments, settings_from_args, shown_url

log = logging.getLogger("threadloom")

DESCRIPTION = """\
threadloom: a self-hosted runs server. The OpenAI Assistants API v2 under /v1 (the
official SDKs work by changing base_url) and the LangGraph Agent Server API at the root,
over one store (SQLite by default, or PostgreSQL), on any OpenAI-compatible model or the
packaged local one. Every flag also reads a THREADLOOM_* variable (named in its help);
a flag wins over its variable."""

# PostgreSQL may still be starting (a container, a reboot): keep trying this long.
DATABASE_WAIT_SECONDS = 30.0


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _env_flag(name: str) -> bool:
    return (_env(name) or "").lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="threadloom", description=DESCRIPTION, formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"threadloom {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the API server (with its own run executor unless --no-executor)",
                                description=DESCRIPTION, formatter_class=_Help)
    add_serve_arguments(serve)
    serve.add_argument(
        "--no-executor", action="store_true", default=_env_flag("NO_EXECUTOR"),
        help="an API replica: leave runs, ingestion and code to `threadloom worker`s (needs --redis; THREADLOOM_NO_EXECUTOR)",
    )
    worker = commands.add_parser("worker", help="execute runs, ingestion and code for API replicas (needs --redis; no HTTP)",
                                 formatter_class=_Help)
    add_serve_arguments(worker)
    migrate = commands.add_parser("migrate", help="apply database migrations and exit", formatter_class=_Help)
    add_serve_arguments(migrate)
    return parser


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text


async def _migrate(url: str) -> None:
    from threadloom.store.database import Database

    db = Database(url)
    try:
        await db.migrate()
    finally:
        await db.dispose()


def prepare_database(url: str) -> str | None:
    """Open the database and bring its schema up to date; the reason in one line if it
    cannot be opened. PostgreSQL that refuses connections is tried again for a while."""
    deadline = time.monotonic() + DATABASE_WAIT_SECONDS
    said = False
    while True:
        try:
            asyncio.run(_migrate(url))
            return None
        except Exception as exc:
            reason = _reason(exc)
            unreachable = isinstance(getattr(exc, "orig", None) or exc, OSError) or any(
                word in reason.lower() for word in ("connect", "starting up", "shutting down"))
            if not (url.startswith("postg") and unreachable) or time.monotonic() > deadline:
                return f"cannot open the database {shown_url(url)}: {reason}"
            if not said:
                print(f"threadloom: waiting for the database {shown_url(url)} ({reason})", file=sys.stderr)
                said = True
            time.sleep(1.0)


def bind(host: str, port: int) -> socket.socket | str:
    """The listening socket, bound before anything else starts, or why it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is in use (another threadloom?); choose another with --port"
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    from threadloom import logs

    logs.configure(settings.log_level, settings.log_format)
    sock = None
    if args.command == "serve":
        sock = bind(settings.host, settings.port)
        if isinstance(sock, str):
            print(f"threadloom: {sock}", file=sys.stderr)
            return 1
    problem = prepare_database(settings.database)
    if problem:
        print(f"threadloom: {problem}", file=sys.stderr)
        return 1
    if args.command == "migrate":
        print(f"threadloom: the database {shown_url(settings.database)} is up to date", file=sys.stderr)
        return 0
    if args.command == "worker":
        from threadloom.worker import run_worker

        return run_worker(settings)
    import uvicorn

    from threadloom.api.http_protocol import GuardedHttpProtocol
    from threadloom.app import create_app
    from threadloom.draining_server import DrainingServer

    from threadloom.services.langgraph.user_graphs import GraphConfigError

    try:
        app = create_app(settings, migrate=False)
    except GraphConfigError as exc:
        print(f"threadloom: --langgraph-config: {exc}", file=sys.stderr)
        return 1
    GuardedHttpProtocol.header_seconds = settings.read_timeout
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # logs.configure set the handlers
        access_log=False,  # api/request_log.py writes one line per request
        loop="uvloop",
        http=GuardedHttpProtocol,
        # Streams end with their runs during the drain; this only bounds what is left.
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # a loopback/LAN service: no X-Forwarded-* rewriting per request
    )
    DrainingServer(config, app).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
