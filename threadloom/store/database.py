"""The connection to SQLite or PostgreSQL, and how transactions run.

Code that touches the database is a plain function of a SQLAlchemy `Connection`, run
as one transaction by `transact` (read-write) or `query` (read-only):

- PostgreSQL: an asyncpg engine; the function runs through `run_sync`, each statement
  awaited on the event loop.
- SQLite: the stdlib driver, called directly on the event loop thread. Measured on the
  run path, handing each transaction to a thread cost more than the transaction: the
  GIL hand-off made a run take 5 ms of CPU against 2 ms inline (and aiosqlite, a hop per
  statement, more still). What could block — the fsync of a WAL checkpoint — is kept
  off the loop: commits in WAL mode with synchronous=NORMAL only write to the OS cache,
  and checkpoints run in a background thread on their own connection. SQLite serves
  one process; several processes share PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Callable, TypeVar

import orjson
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from threadloom.store import projects

log = logging.getLogger("threadloom.store")

MIGRATIONS = Path(__file__).parent / "migrations"
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")
T = TypeVar("T")


def database_url(url: str) -> str:
    """Accept the plain URLs users write and pick the driver: the stdlib's for SQLite,
    asyncpg for PostgreSQL."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def unreachable(exc: BaseException) -> bool:
    """The database is away (restarting, out of reach), as opposed to a statement it refused."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return exc.connection_invalidated if isinstance(exc, DBAPIError) else isinstance(exc, (ConnectionError, OSError))


def _cut_off_connections_are_lost(context) -> None:
    """asyncpg leaves a connection whose operation the server cut off unusable ("cannot
    switch to state ..; another operation is in progress"); SQLAlchemy does not count that
    as a disconnect, so the pool would hand it out again. Counted as one, it is dropped
    and the error reads as a lost database."""
    original = context.original_exception
    if type(original).__name__ == "InternalClientError" and "another operation" in str(original):
        context.is_disconnect = True


def _dumps(value) -> str:
    return orjson.dumps(value).decode()


class Database:
    def __init__(self, url: str):
        self.url = database_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
        if self.is_sqlite:
            # One connection: calls run one at a time on the loop thread.
            self.sync_engine = create_engine(
                self.url,
                poolclass=StaticPool,
                connect_args={"timeout": 30, "check_same_thread": False},
                **options,
            )
            event.listen(self.sync_engine, "connect", _sqlite_pragmas)
            projects.install(self.sync_engine)
            self.engine = None
            self._checkpointer = WalCheckpointer(self.sync_engine.url.database)
            # Long reads (a vector store's chunks) run in threads on connections of their own.
            self._reader = create_engine(self.url, poolclass=NullPool, connect_args={"timeout": 30}, **options)
            projects.install(self._reader)
        else:
            # Connections are kept, not churned: overflow connections are closed when
            # returned, and opening one (with TLS negotiation) cost more than a run.
            self.engine = create_async_engine(self.url, pool_size=64, max_overflow=16, **options)
            projects.install(self.engine.sync_engine)
            event.listen(self.engine.sync_engine, "handle_error", _cut_off_connections_are_lost)
            self.sync_engine = None
            self._checkpointer = None

    # -- transactions as functions (the fast path) ------------------------------

    async def transact(self, fn: Callable[[Connection], T], durable: bool = True) -> T:
        """Run `fn(conn)` in one read-write transaction; it commits when fn returns and
        rolls back if it raises. `durable=False` lets PostgreSQL acknowledge the commit
        before it reaches the disk (2.8 ms against 0.3 ms here): for progress a crash may
        lose without harm, since a run cut off by a crash is failed anyway. SQLite's WAL
        commits are already of that kind."""
        if self.sync_engine is None:
            async with self.engine.begin() as conn:
                if not durable:
                    await conn.execute(_ASYNC_COMMIT)
                return await conn.run_sync(fn)
        return self._sync_transact(fn)

    async def query(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` on a read-only view (no transaction is committed)."""
        if self.sync_engine is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        return self._sync_query(fn)

    async def read_off_loop(self, fn: Callable[[Connection], T]) -> T:
        """A long read kept off the event loop: on SQLite, in a thread on its own connection
        (WAL lets it read beside the writer); asyncpg already awaits each statement."""
        if self.sync_engine is None:
            return await self.query(fn)

        def read():
            with self._reader.connect() as conn:
                return fn(conn)

        return await asyncio.to_thread(read)

    def _sync_transact(self, fn):
        with self.sync_engine.begin() as conn:
            return fn(conn)

    def _sync_query(self, fn):
        with self.sync_engine.connect() as conn:
            try:
                return fn(conn)
            finally:
                conn.rollback()

    async def ping(self) -> None:
        """A round trip to the database; raises when it cannot be reached."""
        await self.query(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    async def migrate(self) -> None:
        """Apply Alembic migrations up to head. Several processes may start at once on one
        PostgreSQL: an advisory lock makes them take turns."""
        if self.is_sqlite:
            self._sync_transact(_upgrade)  # before the server accepts requests
            self._checkpointer.start()
            return
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(74736)"))
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
        if self.sync_engine is not None:
            self._checkpointer.stop()
            self.sync_engine.dispose()
            self._reader.dispose()


def _upgrade(sync_conn) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync_conn
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Checkpoints (which fsync) are the WalCheckpointer's job, off the event loop; the
    # automatic one is only a backstop should it fall behind (8000 pages, 32 MB).
    cursor.execute("PRAGMA wal_autocheckpoint=8000")
    cursor.execute("PRAGMA journal_size_limit=33554432")
    cursor.close()


class WalCheckpointer:
    """Copies the WAL back into the database file four times a second, in its own thread."""

    def __init__(self, path: str | None, interval: float = 0.25):
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.path or self.path == ":memory:" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
