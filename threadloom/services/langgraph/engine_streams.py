"""The SSE stream of a built-in graph run: the engine run's events, read from the bus and
translated into LangGraph's stream modes."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

from threadloom import metrics
from threadloom.services.langgraph.engine_runs import EngineRunQueue
from threadloom.services.langgraph.messages import render
from threadloom.services.langgraph.run_rows import RunRow
from threadloom.services.langgraph.state import BUSY_ENGINE, load_contents
from threadloom.services.langgraph.stream import (
    HEARTBEAT_SECONDS,
    StreamEvent,
    StreamTranslator,
    parse_event_id,
)
from threadloom.runtime.events import EventBus
from threadloom.store.database import Database


class EngineRunStreams:
    def __init__(self, db: Database, bus: EventBus, queue: EngineRunQueue, cancel_later: Callable[[RunRow], None]):
        self.db = db
        self.bus = bus
        self.queue = queue
        self.cancel_later = cancel_later

    async def _translator(self, row: RunRow, modes: list[str]) -> StreamTranslator:
        door = row.door
        base = None
        if "values" in modes and row.engine_run_id is not None:
            def read(conn):
                contents = load_contents(conn, [row.thread_id])[row.thread_id]
                return render(contents.messages, contents.steps, until_ordinal=door["base_ordinal"],
                              without_outputs=door.get("resumed_step"), usage=contents.usage, models=contents.models).messages

            base = await self.db.query(read)
        return StreamTranslator(
            run_id=row.id, thread_id=row.thread_id, assistant_id=row.assistant_id, graph_id=door["graph_id"],
            model=door["model"], temperature=door["temperature"], metadata=row.body["metadata"],
            modes=set(modes), base_messages=base,
            first_step=1 if door.get("resumed_step") else 0,  # a resume starts after the agent's step
        )

    async def stream(
        self,
        row: RunRow,
        modes: list[str],
        *,
        last_event_id: str | None = None,
        from_start: bool = True,
        cancel_on_disconnect: bool = False,
    ) -> AsyncIterator[list[StreamEvent]]:
        """The events of one LangGraph run, in batches: from its start (or after Last-Event-ID), or
        only what comes from now on (a join of a stream that is not resumable)."""
        finished = False
        last = parse_event_id(last_event_id)
        if last is not None:
            from_start = True
        metrics.ACTIVE_STREAMS.inc()
        try:
            while row.engine_run_id is None and row.stored_status is None:
                if not await self.queue.wait_started(row.id, HEARTBEAT_SECONDS):
                    yield []  # quiet: a heartbeat
                reloaded = await self.queue.reload(row.id)
                if reloaded is None:
                    finished = True
                    return
                row = reloaded
            translator = await self._translator(row, modes)
            if row.engine_run_id is None:  # settled without running (nothing to do, or an error)
                outputs = translator.start()
                if row.stored_status == "error" and row.door.get("error"):
                    outputs.append((len(outputs), "error", row.door["error"]))
                yield [(name, payload, f"0-{k}") for k, name, payload in outputs if last is None or (0, k) > last]
                finished = True
                return
            engine_run_id = row.engine_run_id
            start = row.door["event_start"] or 0
            skip_below = start if from_start else await self.bus.position(engine_run_id)
            head = []
            if skip_below <= start:
                for k, name, payload in translator.start():
                    if last is None or (start, k) > last:
                        head.append((name, payload, f"{start}-{k}"))
            if not await self.bus.has(engine_run_id):
                # Its events are gone (it ended long ago, or runs in another process).
                if head:
                    yield head
                while await self.queue.engine_status(engine_run_id) in BUSY_ENGINE:
                    await asyncio.sleep(HEARTBEAT_SECONDS)
                    yield []  # quiet: a heartbeat
                finished = True
                return
            if head:
                yield head
            async for batch in self.bus.read_batches(engine_run_id, start, idle=HEARTBEAT_SECONDS):
                if not batch:
                    yield []  # quiet: a heartbeat
                    continue
                chunks = []
                for event in batch:
                    outputs = translator.feed(event.name, event.data)
                    if event.seq >= skip_below:
                        position = event.seq + 1
                        for k, name, payload in outputs:
                            if last is None or (position, k) > last:
                                chunks.append((name, payload, f"{position}-{k}"))
                    if translator.ended:
                        break
                if chunks:
                    yield chunks
                if translator.ended:
                    finished = True
                    return
        finally:
            metrics.ACTIVE_STREAMS.dec()
            if not finished and cancel_on_disconnect:
                self.cancel_later(row)
