"""Keeps runs from waiting forever: expires runs past `expires_at`, ends runs whose
executor died (its lease ran out), renews the leases of the runs this process holds, and,
in a process that executes runs, takes the queued runs nobody holds: left by a process
that stopped or died, or queued by an API replica that executes none (the bus wakes the
workers for those at once; the sweep is the fallback when a wake is lost)."""

from __future__ import annotations

import asyncio
import logging
import time

from threadloom.engine.executor import LEASE_SECONDS
from threadloom.engine.run_writer import RunWriter, end_stored_run
from threadloom.store import runs as run_queries
from threadloom.store.database import unreachable

log = logging.getLogger("threadloom.runtime")

# Statuses only another process (or a cancel) gives a run this process is executing.
ENDED_ELSEWHERE = ("cancelling", "cancelled", "failed", "expired")
ORPHAN_ERROR = {"code": "server_error", "message": "The server executing this run stopped before it finished."}


class RunSweeper:
    def __init__(self, writer: RunWriter, dispatcher, owner: str, local=None, bus=None, interval: float = 1.0):
        """`local`: this process's LocalDispatcher, when it executes runs."""
        self.writer = writer
        self.dispatcher = dispatcher
        self.owner = owner
        self.local = local
        self.bus = bus
        self.interval = interval
        self._task: asyncio.Task | None = None
        self._last_renewal = 0.0
        self._taking: asyncio.Task | None = None
        self._take_again = False

    async def start(self) -> None:
        await self.sweep()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        for task in (self._task, self._taking):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.local is not None:
            # What was reserved here and not started is free for the others at once.
            released = await self.writer.db.transact(lambda conn: run_queries.release_queued(conn, self.owner))
            if released and self.bus is not None:
                for run_id in released:
                    self.bus.signal("work", run_id)
                await self.bus.flush()

    def wake(self) -> None:
        """New work may be queued: take it now (a take already under way goes round again)."""
        if self.local is None:
            return
        if self._taking is not None and not self._taking.done():
            self._take_again = True
            return
        self._taking = asyncio.get_running_loop().create_task(self._take_loop())

    async def _take_loop(self) -> None:
        try:
            while True:
                self._take_again = False
                await self.take_queued()
                if not self._take_again:
                    return
        except Exception as exc:
            if not unreachable(exc):
                log.exception("taking queued runs failed")
            else:  # the next sweep takes them
                log.warning("taking queued runs skipped: the database is unavailable (%s)", getattr(exc, "orig", None) or exc)

    async def take_queued(self) -> None:
        """Reserve queued runs nobody holds (as many as there are free slots) and start
        them here, with those reserved here that nothing here executes yet."""
        local = self.local
        if local is None or not local.free_slots():
            return
        now = int(time.time())
        running = set(local.running())
        candidates = await self.writer.db.query(lambda conn: run_queries.queued_to_take(conn, self.owner, now))
        if not any(run_id not in running for run_id in candidates):
            return
        limit = min(local.free_slots(), 100)
        taken = await self.writer.db.transact(
            lambda conn: run_queries.reserve_queued(conn, self.owner, now, now + LEASE_SECONDS, limit), durable=False
        )
        for run_id in taken:
            if run_id not in running:
                local.submit(run_id)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception as exc:
                if not unreachable(exc):
                    log.exception("run sweep failed")
                    continue
                log.warning("run sweep skipped: the database is unavailable (%s)", getattr(exc, "orig", None) or exc)

    async def sweep(self) -> None:
        await self.take_queued()
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
