"""GET /threads/{thread_id}/stream: one stream over every run of a thread, one after the
other, as LangGraph's server gives it. Each run's events are its own run stream's (same
names, same data), followed by `metadata` {"status": "run_done", "run_id": ...}; the
stream stays open for the runs that come later, until the client leaves or the thread is
deleted.

Event ids are `<run id>:<the run stream's own id>` (`<run id>:done` for run_done), so
Last-Event-ID resumes inside a run and then goes on with the runs after it; `-` starts
from the thread's first run. Without one the stream starts with what the thread's active
run does from now on (the whole of it if it has not started), else with the next run."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import AsyncIterator

from threadloom.services.langgraph.errors import NotFound, Unprocessable
from threadloom.services.langgraph.ids import check_thread_id
from threadloom.services.langgraph.run_rows import RunRow
from threadloom.services.langgraph.runs import LangGraphRuns
from threadloom.services.langgraph.stream import HEARTBEAT_SECONDS, StreamEvent
from threadloom.store import langgraph_runs, langgraph_threads
from threadloom.store.database import Database

MODES = ("run_modes", "lifecycle", "state_update")
# How often a stream with no run to follow looks for the thread's next one in the database
# (a run created in this process wakes it at once; one created by another server is found so).
NEXT_RUN_POLL_SECONDS = 1.0
_STATE_EVENTS = frozenset({"values", "updates"})


@dataclass
class _Start:
    row: RunRow | None  # the run to follow first (None: wait for the next one)
    after_seq: int | None  # with no row: follow runs numbered after this one
    last_event_id: str | None  # inside `row`: resume after this id of its own stream
    from_start: bool


def _wanted(name: str, modes: set[str]) -> bool:
    if "run_modes" in modes:
        return True
    if "lifecycle" in modes and name == "metadata":
        return True
    return "state_update" in modes and name in _STATE_EVENTS


class ThreadStreams:
    def __init__(self, db: Database, runs: LangGraphRuns):
        self.db = db
        self.runs = runs

    async def open(self, thread_id: str, modes: list[str], last_event_id: str | None) -> AsyncIterator[list[StreamEvent]]:
        """Checks the request (errors raise here, before the response starts), then returns
        the stream's batches."""
        check_thread_id(thread_id)
        modes = modes or ["run_modes"]
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise Unprocessable(f"Invalid stream_mode {unknown[0]!r}: expected one of {', '.join(MODES)}")
        start = await self.db.query(lambda conn: self._start(conn, thread_id, last_event_id))
        return self._follow(thread_id, set(modes), start)

    @staticmethod
    def _start(conn, thread_id: str, last_event_id: str | None) -> _Start:
        if not langgraph_threads.exists(conn, thread_id):
            raise NotFound(f"Thread with ID {thread_id} not found")
        if last_event_id == "-":
            return _Start(None, None, None, True)
        if last_event_id and ":" in last_event_id:
            run_id, _, inner = last_event_id.partition(":")
            found = langgraph_runs.fetch(conn, run_id, thread_id)
            if found is not None:
                row = RunRow(*found)
                if inner == "done":
                    return _Start(None, row.seq, None, True)
                return _Start(row, None, inner, True)
        active = langgraph_runs.first_active_of_thread(conn, thread_id)
        if active is not None:
            row = RunRow(*active)
            return _Start(row, None, None, row.status == "pending")
        return _Start(None, langgraph_runs.last_seq_of_thread(conn, thread_id), None, True)

    async def _follow(self, thread_id: str, modes: set[str], start: _Start) -> AsyncIterator[list[StreamEvent]]:
        row, after_seq = start.row, start.after_seq
        last_event_id, from_start = start.last_event_id, start.from_start
        while True:
            if row is None:
                waited = self._next_run(thread_id, after_seq)
                async for found in waited:
                    if found is None:
                        yield []  # quiet: a heartbeat
                    else:
                        row = found
                if row is None:
                    return  # the thread was deleted
            async for batch in self.runs.stream(row, row.body["kwargs"]["stream_mode"], last_event_id=last_event_id,
                                                from_start=from_start):
                if not batch:
                    yield []
                    continue
                kept = [(name, data, f"{row.id}:{event_id}") for name, data, event_id in batch if _wanted(name, modes)]
                if kept:
                    yield kept
            if modes != {"state_update"}:
                yield [("metadata", {"status": "run_done", "run_id": row.id}, f"{row.id}:done")]
            after_seq, row, last_event_id, from_start = row.seq, None, None, True

    async def _next_run(self, thread_id: str, after_seq: int | None) -> AsyncIterator[RunRow | None]:
        """Yields None every HEARTBEAT_SECONDS while the thread has no run after `after_seq`,
        then that run; ends without one if the thread is deleted."""
        def look(conn):
            if not langgraph_threads.exists(conn, thread_id):
                return False
            found = langgraph_runs.next_of_thread(conn, thread_id, after_seq)
            return RunRow(*found) if found is not None else None

        quiet_since = time.monotonic()
        with self.runs.new_runs.watch(thread_id) as created:
            while True:
                created.clear()
                found = await self.db.query(look)
                if found is False:
                    return
                if found is not None:
                    yield found
                    return
                if time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                    quiet_since = time.monotonic()
                    yield None
                try:
                    await asyncio.wait_for(created.wait(), NEXT_RUN_POLL_SECONDS)
                except asyncio.TimeoutError:
                    pass
