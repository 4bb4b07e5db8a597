"""Runs execute outside the request that created them: the in-process dispatcher starts
one task per queued run and can interrupt it on cancel; the cluster dispatcher hands runs
to the workers over the bus when this process executes none (or cancels them there)."""

from __future__ import annotations

import asyncio
import logging
import time

from threadloom.engine.executor import LEASE_SECONDS, RunExecutor
from threadloom.engine.run_writer import end_stored_run

log = logging.getLogger("threadloom.runtime")


class LocalDispatcher:
    def __init__(self, executor: RunExecutor, max_concurrent: int = 2048):
        self._executor = executor
        self._max_concurrent = max_concurrent
        self._slots = asyncio.Semaphore(max_concurrent)
        self._running: dict[str, tuple[asyncio.Task, asyncio.Event]] = {}
        self._draining = False

    def reservation(self) -> dict:
        """Columns that reserve a run being queued for this process: it starts the run
        itself, and another may take it only if this process stops renewing the lease."""
        return {"owner": self._executor.owner, "lease_until": int(time.time()) + LEASE_SECONDS}

    def free_slots(self) -> int:
        return 0 if self._draining else max(0, self._max_concurrent - len(self._running))

    def submit(self, run_id: str) -> None:
        if self._draining:
            return  # it stays queued in the store; another server takes it
        entry = self._running.get(run_id)
        if entry is not None and not entry[0].done():
            return  # already here (the sweeper and the request both handed it over)
        cancel = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._run(run_id, cancel))
        self._running[run_id] = (task, cancel)

    async def _run(self, run_id: str, cancel: asyncio.Event) -> None:
        try:
            async with self._slots:
                await self._executor.execute(run_id, cancel)
        except asyncio.CancelledError:
            if not cancel.is_set():
                raise
            # Interrupted before the executor held the turn: settle the cancel here.
            asyncio.current_task().uncancel()
            await end_stored_run(self._executor.writer, run_id, "cancelling", "cancelled")
        except Exception:
            log.exception("executor crashed on run %s", run_id)
        finally:
            entry = self._running.get(run_id)
            if entry is not None and entry[1] is cancel:
                del self._running[run_id]

    def cancel(self, run_id: str) -> bool:
        """Interrupt the run's turn if this process is executing it."""
        entry = self._running.get(run_id)
        if entry is None:
            return False
        task, cancel = entry
        if not cancel.is_set():
            cancel.set()
            task.cancel()
        return True

    def running(self) -> list[str]:
        """The runs this process has a task for."""
        return list(self._running)

    def interrupt(self, run_id: str) -> None:
        """Stop the run's turn at its next model chunk, without interrupting a write: another
        process ended the run (or is ending it)."""
        entry = self._running.get(run_id)
        if entry is not None:
            entry[1].set()

    async def drain(self, grace: float, abort=lambda: False) -> int:
        """Start nothing new; wait up to `grace` seconds for the turns running here, then
        end the others (`failed`, their text kept: RunExecutor.execute). The number ended."""
        self._draining = True
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline and not abort():
            await asyncio.sleep(0.05)
        tasks = [task for task, _ in self._running.values()]
        if tasks:
            log.info("ending %d run(s) still executing after the %.0f s grace period", len(tasks), grace)
            self._executor.stopping = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def shutdown(self) -> None:
        tasks = [task for task, _ in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ClusterDispatcher:
    """Dispatch among processes that share a Redis bus. A run queued here is started here
    when this process executes runs (reserved for it, as alone); an API replica without an
    executor leaves it free and wakes one worker, whose (conditional) claim starts it.
    A cancel reaches the process executing the run, wherever it is."""

    def __init__(self, bus, local: LocalDispatcher | None):
        self._bus = bus
        self.local = local

    def reservation(self) -> dict:
        if self.local is not None:
            return self.local.reservation()
        return {"owner": None, "lease_until": None}

    def submit(self, run_id: str) -> None:
        if self.local is not None:
            self.local.submit(run_id)
        else:
            self._bus.signal("work", run_id)

    def cancel(self, run_id: str) -> bool:
        """True: the process executing the run ends it `cancelled` (if that process is
        gone, the sweeper does once its lease lapses)."""
        if self.local is not None and self.local.cancel(run_id):
            return True
        self._bus.signal("cancel", run_id)
        return True

    def interrupt(self, run_id: str) -> None:
        if self.local is not None:
            self.local.interrupt(run_id)

    def running(self) -> list[str]:
        return self.local.running() if self.local is not None else []

    async def drain(self, grace: float, abort=lambda: False) -> int:
        return await self.local.drain(grace, abort) if self.local is not None else 0

    async def shutdown(self) -> None:
        if self.local is not None:
            await self.local.shutdown()
