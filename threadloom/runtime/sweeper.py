"""Keeps runs from waiting forever: expires runs past `expires_at`, ends runs whose
executor died (its lease ran out), renews the leases of the runs this process holds, and
at start picks up queued runs a stopped process left behind."""

from __future__ import annotations

import asyncio
import logging
import time

from threadloom.engine.executor import LEASE_SECONDS
from threadloom.engine.run_writer import RunWriter, end_stored_run
from threadloom.store import runs as run_queries

log = logging.getLogger("threadloom.runtime")

# Statuses only another process (or a cancel) gives a run this process is executing.
ENDED_ELSEWHERE = ("cancelling", "cancelled", "failed", "expired")
ORPHAN_ERROR = {"code": "server_error", "message": "The server executing this run stopped before it finished."}


class RunSweeper:
    def __init__(self, writer: RunWriter, dispatcher, owner: str, interval: float = 1.0):
        self.writer = writer
        self.dispatcher = dispatcher
        self.owner = owner
        self.interval = interval
        self._task: asyncio.Task | None = None
        self._last_renewal = 0.0

    async def start(self) -> None:
        await self.recover()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def recover(self) -> None:
        """Queued runs nobody executes are dispatched again (the claim is conditional, so
        two processes cannot both run one)."""
        queued = await self.writer.db.query(run_queries.queued_run_ids)
        for run_id in queued:
            self.dispatcher.submit(run_id)
        await self.sweep()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("run sweep failed")

    async def sweep(self) -> None:
        now = int(time.time())
        if time.monotonic() - self._last_renewal > LEASE_SECONDS / 3:
            await self.writer.db.transact(lambda conn: run_queries.renew_leases(conn, self.owner, now + LEASE_SECONDS))
            self._last_renewal = time.monotonic()
        expired, orphans = await self.writer.db.query(lambda conn: (
            run_queries.expired_waiting_runs(conn, now), run_queries.orphaned_runs(conn, self.owner, now)
        ))
        await self._interrupt_ended_elsewhere()
        for run_id, status in expired:
            await end_stored_run(self.writer, run_id, status, "expired")
        for run_id, status in orphans:
            if status == "cancelling":
                await end_stored_run(self.writer, run_id, status, "cancelled")
            else:
                log.warning("run %s was orphaned by a stopped executor; failing it", run_id)
                await end_stored_run(self.writer, run_id, status, "failed", last_error=ORPHAN_ERROR)

    async def _interrupt_ended_elsewhere(self) -> None:
        """A run this process executes that another process cancelled or ended (a cancel
        sent to another server, a lapsed lease): stop its model call and end its streams."""
        local = self.dispatcher.running()
        for i in range(0, len(local), 500):
            batch = local[i : i + 500]
            ended = await self.writer.db.query(lambda conn: run_queries.runs_in_status(conn, batch, ENDED_ELSEWHERE))
            for run_id in ended:
                self.dispatcher.interrupt(run_id)
