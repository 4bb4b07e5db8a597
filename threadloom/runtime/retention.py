"""Ends what has expired: files past their `expires_at` are deleted (and leave every vector
store), vector stores past theirs become `expired`."""

from __future__ import annotations

import asyncio
import logging
import time

from threadloom.services.files import remove_file
from threadloom.store import vector_stores as vs_queries
from threadloom.store.database import Database, unreachable

log = logging.getLogger("threadloom.runtime")


def expire_due(conn, now: int) -> None:
    for file_id in vs_queries.due_file_ids(conn, now):
        remove_file(conn, file_id)
    vs_queries.expire_due_stores(conn, now)


class ExpirySweeper:
    def __init__(self, db: Database, interval: float = 30.0):
        self.db = db
        self.interval = interval
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.db.transact(lambda conn: expire_due(conn, int(time.time())))
            except Exception as exc:
                if unreachable(exc):
                    log.warning("expiry sweep skipped: the database is unavailable (%s)", getattr(exc, "orig", None) or exc)
                else:
                    log.exception("expiry sweep failed")
            await asyncio.sleep(self.interval)
