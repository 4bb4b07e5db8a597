"""The connection to SQLite or PostgreSQL, and how transactions run.

Code that touches the database is a plain function of a SQLAlchemy `Connection`, run
as one transaction by `transact` (read-write) or `query` (read-only):

- PostgreSQL: an asyncpg engine; the function runs through `run_sync`, each statement
  awaited on the event loop.
- SQLite: the stdlib driver in dedicated threads (one writer — SQLite has one writer at
  a time anyway — and two readers over WAL). A whole transaction is one hop to its
  thread, where an async driver would hop for every statement, begin and commit; that
  hop, not SQLite, was most of a run's database time.

The async context managers `write()` / `read()` (aiosqlite / asyncpg connections) remain
for code that needs to await between statements.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable, TypeVar

import orjson
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


def async_url(url: str) -> str:
    """Accept the plain URLs users write and pick the async driver."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:"):]
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def sync_sqlite_url(url: str) -> str:
    return "sqlite:" + url.split(":", 1)[1]


def _dumps(value) -> str:
    return orjson.dumps(value).decode()


class Database:
    def __init__(self, url: str):
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
        if self.is_sqlite:
            self.engine = create_async_engine(self.url, pool_size=4, max_overflow=4, connect_args={"timeout": 30}, **options)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self.sync_engine = create_engine(
                sync_sqlite_url(self.url),
                pool_size=4,
                max_overflow=4,
                connect_args={"timeout": 30, "check_same_thread": False},
                **options,
            )
            event.listen(self.sync_engine, "connect", _sqlite_pragmas)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            self._readers = ThreadPoolExecutor(2, thread_name_prefix="sqlite-reader")
            # Writers through either path take turns here rather than spin on the file lock.
            self._write_lock = asyncio.Lock()
        else:
            self.engine = create_async_engine(self.url, pool_size=20, max_overflow=40, **options)
            self.sync_engine = None
            self._write_lock = None

    # -- transactions as functions (the fast path) ------------------------------

    async def transact(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` in one read-write transaction; it commits when fn returns and
        rolls back if it raises."""
        if self.sync_engine is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        async with self._write_lock:
            return await asyncio.get_running_loop().run_in_executor(self._writer, self._sync_transact, fn)

    async def query(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` on a read-only view (no transaction is committed)."""
        if self.sync_engine is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._sync_query, fn)

    def _sync_transact(self, fn):
        with self.sync_engine.begin() as conn:
            return fn(conn)

    def _sync_query(self, fn):
        with self.sync_engine.connect() as conn:
            try:
                return fn(conn)
            finally:
                conn.rollback()

    # -- async connections ------------------------------------------------------

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction that commits on exit."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def migrate(self) -> None:
        """Apply Alembic migrations up to head. Several processes may start at once on one
        PostgreSQL: an advisory lock makes them take turns."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(74736)"))
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.sync_engine is not None:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            self.sync_engine.dispose()


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
    cursor.close()
