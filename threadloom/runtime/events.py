"""The in-process event bus: each run's events in order, readable from any position.

A run's log lives while the run is active and for a while after it ends, so a client
can (re)join a stream from an event id. Every event is published after the commit of
the state change it announces; the store stays the truth.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import AsyncIterator


# Long enough for a client to rejoin a stream it lost; every finished run held costs
# ~30 KB and lengthens garbage collection (measured: RSS +30 KB per run kept).
KEEP_FINISHED_SECONDS = 30.0


@dataclass(slots=True)
class RunEvent:
    seq: int  # position in the run's log, from 0
    name: str
    data: dict | str
    # The event as the OpenAI door frames it (api/openai/streaming.py), kept here so it is
    # encoded once however many clients read it.
    frame: bytes | None = None


class _RunLog:
    __slots__ = ("events", "changed", "ended_at", "compacted")

    def __init__(self) -> None:
        self.events: list[RunEvent] = []
        self.changed = asyncio.Event()
        self.ended_at: float | None = None
        self.compacted = False


class EventBus:
    def __init__(self) -> None:
        self._logs: dict[str, _RunLog] = {}
        self._collected_at = 0.0

    def _log(self, run_id: str) -> _RunLog:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()
        return log

    def publish(self, run_id: str, name: str, data: dict | str) -> RunEvent:
        log = self._log(run_id)
        event = RunEvent(len(log.events), name, data)
        log.events.append(event)
        log.changed.set()
        log.changed = asyncio.Event()
        return event

    async def position(self, run_id: str) -> int:
        """The seq the next event of this run will get."""
        log = self._logs.get(run_id)
        return len(log.events) if log else 0

    def end(self, run_id: str) -> None:
        """The run reached a final state: keep its log a while for late readers, then drop it."""
        log = self._logs.get(run_id)
        if log is not None and log.ended_at is None:
            log.ended_at = time.monotonic()
        self._collect()

    async def has(self, run_id: str) -> bool:
        """Whether the run's events can be read here (it is recent, and of this process)."""
        return run_id in self._logs

    def signal(self, channel: str, run_id: str) -> None:
        """Work and cancels for other processes: there are none without a shared bus."""

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def _collect(self) -> None:
        """Every few seconds: drop the logs of runs finished more than KEEP_FINISHED_SECONDS
        ago, and the encoded frames of the others (a late reader re-encodes them; the live
        readers have written them by then)."""
        now = time.monotonic()
        if now - self._collected_at < 5.0:
            return
        self._collected_at = now
        stale = []
        for run_id, log in self._logs.items():
            if log.ended_at is None:
                continue
            if now - log.ended_at > KEEP_FINISHED_SECONDS:
                stale.append(run_id)
            elif not log.compacted and now - log.ended_at > 2.0:
                for event in log.events:
                    event.frame = None
                log.compacted = True
        for run_id in stale:
            del self._logs[run_id]

    async def read_batches(self, run_id: str, start: int = 0, idle: float | None = None) -> AsyncIterator[list[RunEvent]]:
        """Events from seq `start` on, waiting for new ones; the caller decides when to
        stop. Everything already published comes as one list, which a stream writes to its
        socket in one go. An empty list means `idle` quiet seconds passed."""
        log = self._log(run_id)
        index = start
        while True:
            if index < len(log.events):
                batch = log.events[index:]
                index += len(batch)
                yield batch
                continue
            try:
                await asyncio.wait_for(log.changed.wait(), idle)
            except TimeoutError:
                yield []
