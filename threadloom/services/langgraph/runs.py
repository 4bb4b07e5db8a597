"""LangGraph runs, whatever graph they run: the built-in graph's on the engine
(engine_runs.py, engine_streams.py), the user's graphs in this process (graph_runs.py).
This is what the door's routes call; it sends each run to the part that runs it."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator


from threadloom.services.langgraph.assistants import check_config, load_for_run, view as assistant_view
from threadloom.services.langgraph.background import BackgroundTasks
from threadloom.services.langgraph.catalog import GraphCatalog
from threadloom.services.langgraph.engine_runs import EngineRunQueue
from threadloom.services.langgraph.engine_streams import EngineRunStreams
from threadloom.services.langgraph.errors import NotFound, Unprocessable
from threadloom.services.langgraph.graph_runs import GraphRuns, graph_kind
from threadloom.services.langgraph.ids import check_run_id, check_thread_id, default_assistant_id
from threadloom.services.langgraph.new_run_signals import NewRunSignals
from threadloom.services.langgraph.requests import RunCreate
from threadloom.services.langgraph.run_requests import Prepared, prepare_run, run_kwargs
from threadloom.services.langgraph.run_rows import ACTIVE_STATUSES, ROLLBACK, RunRow, fetch_run
from threadloom.services.langgraph.state import BUSY_ENGINE
from threadloom.services.langgraph.stream import StreamEvent
from threadloom.services.langgraph.temporary_threads import TemporaryThreads
from threadloom.services.langgraph.threads import insert_langgraph_thread, label_thread
from threadloom.services.langgraph.user_graphs import ThreadTTL
from threadloom.runtime.events import EventBus
from threadloom.services.runs import RunService
from threadloom.store import langgraph_runs, langgraph_threads
from threadloom.store.database import Database

log = logging.getLogger("threadloom.langgraph")
# LangGraph's server answers a cancel of a run that is no longer pending or running so.
NOTHING_TO_CANCEL = ("No matching runs to cancel. Please verify the thread ID and run IDs are correct, "
                     "and the runs haven't been deleted or completed.")


class LangGraphRuns:
    def __init__(self, db: Database, bus: EventBus, engine: RunService, catalog: GraphCatalog, graph_runs: GraphRuns,
                 default_ttl: ThreadTTL | None = None):
        self.db = db
        self.catalog = catalog
        self.new_runs = NewRunSignals()  # wakes the thread streams waiting for a thread's next run
        self.default_ttl = default_ttl  # of the threads a run makes (if_not_exists="create")
        self.background = BackgroundTasks()
        self.queue = EngineRunQueue(db, bus, engine, catalog, self.background, default_ttl)
        self.streams = EngineRunStreams(db, bus, self.queue, self.cancel_later)
        self.graph_runs = graph_runs
        self.temporary = TemporaryThreads(db, self.queue.reload, self.until_done)
        self.hold = self.temporary.hold
        self.release = self.temporary.release

    def prepare(self, thread_id: str | None, payload: RunCreate) -> Prepared:
        return prepare_run(self.catalog, thread_id, payload)

    async def pump(self, thread_id: str) -> None:
        await self.queue.pump(thread_id)

    async def until_done(self, row: RunRow) -> RunRow:
        """Wait until the LangGraph run is neither pending nor running."""
        if graph_kind(row):
            return await self.graph_runs.until_done(row)
        return await self.queue.until_done(row)

    async def result(self, row: RunRow) -> dict:
        """What wait and join return: the thread's values once the run stopped, with the
        interrupt it stopped at, or `__error__`."""
        if graph_kind(row):
            return await self.graph_runs.result(row)
        return await self.queue.result(row)

    def stream(self, row: RunRow, modes: list[str], *, last_event_id: str | None = None, from_start: bool = True,
               cancel_on_disconnect: bool = False) -> AsyncIterator[list[StreamEvent]]:
        """The events of one LangGraph run, in batches: from its start (or after Last-Event-ID), or
        only what comes from now on (a join of a stream that is not resumable)."""
        streams = self.graph_runs if graph_kind(row) else self.streams
        return streams.stream(row, modes, last_event_id=last_event_id, from_start=from_start,
                              cancel_on_disconnect=cancel_on_disconnect)

    async def get_row(self, thread_id: str, run_id: str) -> RunRow:
        self.queue.recover_once()
        check_thread_id(thread_id)
        check_run_id(run_id)

        def read(conn):
            if not langgraph_threads.exists(conn, thread_id):
                raise NotFound(f"Thread with ID {thread_id} not found")
            return fetch_run(conn, run_id, thread_id)

        row = await self.db.query(read)
        if row is None or row.stored_status == ROLLBACK and row.engine_status not in BUSY_ENGINE:
            raise NotFound(f"Run {run_id} not found")
        return row

    async def create(self, prepared: Prepared) -> RunRow:
        self.queue.recover_once()
        if self.catalog.user_graphs and self.catalog.user_graph(await self._graph_of(prepared.assistant_id)):
            row = await self._create_graph_run(prepared)
        else:
            if prepared.parse_error is not None:
                raise prepared.parse_error
            row = await self.queue.create(prepared)
            if prepared.temporary:
                self.background.spawn(self.temporary.delete_when_done(prepared.thread_id, prepared.run_id))
        self.new_runs.notify(row.thread_id)
        return row

    async def _graph_of(self, assistant_id: str) -> str | None:
        for graph_id in self.catalog.ids:
            if assistant_id == default_assistant_id(graph_id):
                return graph_id
        return await self.db.query(lambda conn: langgraph_runs.graph_of_assistant(conn, assistant_id))

    async def _create_graph_run(self, p: Prepared) -> RunRow:
        def create(conn):
            assistant = load_for_run(conn, p.assistant_id, self.catalog)
            if assistant is None:
                raise NotFound("Thread or assistant not found.")
            lg_assistant = assistant_view(assistant)
            thread = langgraph_threads.lock_thread(conn, p.thread_id)
            if thread is None and p.if_not_exists != "create":
                raise NotFound(f"Thread with ID {p.thread_id} not found")
            if thread is None:
                insert_langgraph_thread(conn, p.thread_id, {}, self.default_ttl)
            thread_metadata = label_thread(conn, p.thread_id, p.assistant_id, thread, lg_assistant["graph_id"])
            kwargs = run_kwargs(p, check_config(p.payload.config), p.payload, lg_assistant["graph_id"])
            return self.graph_runs.create_tx(conn, p, lg_assistant, kwargs, thread is not None, thread_metadata)

        row, displaced = await self.db.transact(create)
        self.graph_runs.started(row, displaced)
        if p.temporary:
            self.background.spawn(self.temporary.delete_when_done(p.thread_id, p.run_id))
        return row

    async def list(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[dict]:
        check_thread_id(thread_id)

        def read(conn):
            if not langgraph_threads.exists(conn, thread_id):
                raise NotFound(f"Thread with ID {thread_id} not found")
            return langgraph_runs.page(conn, thread_id, limit, offset, status)

        return [RunRow(*r).wire() for r in await self.db.query(read)]

    def cancel_later(self, row: RunRow) -> None:
        """The client went away from a run it asked to cancel on disconnect."""
        async def cancel():
            try:
                await self.cancel(row.thread_id, row.id, wait=False, action="interrupt")
            except NotFound:
                pass  # it ended, or was deleted, meanwhile

        self.background.spawn(cancel())

    async def cancel(self, thread_id: str, run_id: str, *, wait: bool, action: str) -> RunRow:
        row = await self.get_row(thread_id, run_id)
        if row.status not in ACTIVE_STATUSES:
            raise NotFound(NOTHING_TO_CANCEL)
        if graph_kind(row):
            await self.graph_runs.cancel(row, action)
            return await self.graph_runs.until_done(row) if wait else row
        status = row.status
        if row.engine_run_id is None and status == "pending":
            await self.db.transact(lambda conn: langgraph_runs.settle_waiting(conn, run_id, action == "rollback"))
            self.queue.signal_started(run_id)
        elif status in ACTIVE_STATUSES and row.engine_run_id is not None:
            if action == "rollback":
                await self.db.transact(lambda conn: self.queue.mark_rollback(conn, row.engine_run_id))
            await self.queue.cancel_engine(thread_id, row.engine_run_id)
            self.queue.wait_then_pump(thread_id, row.engine_run_id)
        if wait:
            reloaded = await self.queue.reload(run_id)
            if reloaded is not None:
                row = await self.until_done(reloaded)
            await self.queue.pump(thread_id)
        return row

    async def cancel_many(self, thread_id: str | None, run_ids: list[str] | None, status: str | None, action: str) -> None:
        if status is not None:
            if thread_id is not None or run_ids is not None:
                raise Unprocessable("Cannot specify 'thread_id' or 'run_ids' when using 'status'")
            wanted = ("pending", "running") if status == "all" else (status,)
            targets = list(await self.db.query(lambda conn: langgraph_runs.with_status(conn, wanted)))
        else:
            if thread_id is None or run_ids is None:
                raise Unprocessable("Must provide either a status or both 'thread_id' and 'run_ids'")
            check_thread_id(thread_id)
            targets = [(thread_id, check_run_id(r)) for r in run_ids]
        found = 0
        for tid, rid in targets:
            try:
                await self.cancel(tid, rid, wait=False, action=action)
                found += 1
            except NotFound:
                continue
        if not found:
            raise NotFound("No runs found to cancel." if status is not None else NOTHING_TO_CANCEL)

    async def delete(self, thread_id: str, run_id: str) -> None:
        row = await self.get_row(thread_id, run_id)
        if graph_kind(row) and row.status in ACTIVE_STATUSES:
            await self.graph_runs.cancel(row, "interrupt")
        if row.status in ACTIVE_STATUSES and row.engine_run_id is not None:
            await self.queue.cancel_engine(thread_id, row.engine_run_id)
        await self.db.transact(lambda conn: langgraph_runs.delete_runs(conn, [run_id]))
        self.queue.signal_started(run_id)
        await self.queue.pump(thread_id)

    async def sweep_forever(self, interval: float = 5.0) -> None:
        """In every process: a run enqueued behind another on its thread starts even when
        the replica that enqueued it died before the one ahead finished; a user graph's
        runs held by a process that is gone are failed (running) or adopted (pending)."""
        while True:
            try:
                await self.graph_runs.sweep()
            except Exception as exc:  # the database is away: the next sweep tries again
                log.warning("could not sweep LangGraph runs: %s", exc)
            await asyncio.sleep(interval)
            await self.queue.recover(only_idle=True)
