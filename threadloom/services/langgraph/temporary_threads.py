"""Threads made for a threadless run (POST /runs...): deleted once the run is done and
every client reading its result or stream let go of it."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from threadloom.services.langgraph.run_rows import RunRow
from threadloom.store.database import Database
from threadloom.store.threads import delete_thread

log = logging.getLogger("threadloom.langgraph")


class TemporaryThreads:
    def __init__(self, db: Database, reload: Callable[[str], Awaitable[RunRow | None]],
                 until_done: Callable[[RunRow], Awaitable[RunRow]]):
        self.db = db
        self._reload = reload
        self.until_done = until_done
        self._consumers: dict[str, int] = {}
        self._released: dict[str, asyncio.Event] = {}

    def hold(self, run_id: str) -> None:
        self._consumers[run_id] = self._consumers.get(run_id, 0) + 1

    def release(self, run_id: str) -> None:
        left = self._consumers.get(run_id, 0) - 1
        if left > 0:
            self._consumers[run_id] = left
            return
        self._consumers.pop(run_id, None)
        event = self._released.pop(run_id, None)
        if event is not None:
            event.set()

    async def delete_when_done(self, thread_id: str, run_id: str) -> None:
        try:
            row = await self._reload(run_id)
            if row is not None:
                await self.until_done(row)
            while self._consumers.get(run_id):
                event = self._released.setdefault(run_id, asyncio.Event())
                await event.wait()

            await self.db.transact(lambda conn: delete_thread(conn, thread_id))
        except Exception:
            log.exception("could not delete the temporary thread %s", thread_id)
