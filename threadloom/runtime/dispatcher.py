"""Runs execute outside the request that created them: the in-process dispatcher starts
one task per queued run and can interrupt it on cancel."""

from __future__ import annotations

import asyncio
import logging
import time

from threadloom.engine.executor import RunExecutor
from threadloom.engine.run_writer import end_stored_run

log = logging.getLogger("threadloom.runtime")


class LocalDispatcher:
    def __init__(self, executor: RunExecutor, max_concurrent: int = 2048):
        self._executor = executor
        self._slots = asyncio.Semaphore(max_concurrent)
        self._running: dict[str, tuple[asyncio.Task, asyncio.Event]] = {}
        self._draining = False

    def submit(self, run_id: str) -> None:
        if self._draining:
            return  # it stays queued in the store; the next server to start takes it
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
