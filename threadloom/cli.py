"""`threadloom serve`, `threadloom worker` and `threadloom migrate`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from threadloom.config import _env, add_serve_arguments, settings_from_args


def _env_flag(name: str) -> bool:
    return (_env(name) or "").lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="threadloom")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server with an in-process run worker")
    add_serve_arguments(serve)
    serve.add_argument(
        "--no-executor", action="store_true", default=_env_flag("NO_EXECUTOR"),
        help="an API replica: leave runs, ingestion and code to `threadloom worker`s (needs --redis; THREADLOOM_NO_EXECUTOR)",
    )
    worker = commands.add_parser("worker", help="execute runs, ingestion and code for API replicas (needs --redis; no HTTP)")
    add_serve_arguments(worker)
    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    add_serve_arguments(migrate)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    if args.command == "migrate":
        from threadloom.store.database import Database

        async def run() -> None:
            db = Database(settings.database)
            await db.migrate()
            await db.dispose()

        asyncio.run(run())
        return 0
    if args.command == "worker":
        from threadloom.worker import run_worker

        return run_worker(settings)
    import uvicorn

    from threadloom.app import create_app
    from threadloom.api.http_protocol import GuardedHttpProtocol
    from threadloom.draining_server import DrainingServer

    app = create_app(settings)
    GuardedHttpProtocol.header_seconds = settings.read_timeout
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http=GuardedHttpProtocol,
        # Streams end with their runs during the drain; this only bounds what is left.
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # a loopback/LAN service: no X-Forwarded-* rewriting per request
    )
    DrainingServer(config, app).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
