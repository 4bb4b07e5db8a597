"""LangGraph threads over the engine's threads: the same rows, messages and runs the
OpenAI door uses. `threads.extra` keeps the LangGraph metadata (any JSON) and config."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Callable

from sqlalchemy import Connection

from threadloom.domain.message import CreateMessageRequest, new_message
from threadloom.domain.thread import CreateThreadRequest, new_thread
from threadloom.services.langgraph.assistants import contained
from threadloom.services.langgraph.graph_state import GraphThreadStates, update_response
from threadloom.services.langgraph.search_pages import search_page
from threadloom.services.langgraph.thread_extracts import check_paths, extracted
from threadloom.services.langgraph.errors import Conflict, NotFound, Unprocessable
from threadloom.services.langgraph.ids import check_thread_id, is_uuid
from threadloom.services.langgraph.messages import parse_input
from threadloom.services.langgraph.metadata import merged_metadata
from threadloom.services.langgraph.requests import (
    ThreadCount,
    ThreadCreate,
    ThreadHistory,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadStateUpdate,
    ThreadTimeToLive,
)
from threadloom.services.langgraph.state import (
    EMPTY_STATE,
    Contents,
    Snapshot,
    ThreadRow,
    load_snapshots,
    snapshot_of,
    thread_states,
    thread_wire,
)
from threadloom.services.langgraph.user_graphs import ThreadTTL
from threadloom.services.threads import message_row
from threadloom.store import langgraph_runs, langgraph_threads, thread_ttls
from threadloom.store.database import Database
from threadloom.store.threads import copy_checkpoints, copy_contents, delete_thread, keep_latest_checkpoints
from threadloom.store.objects import message_store, thread_store


log = logging.getLogger("threadloom.langgraph")


def _ttl_of(value) -> ThreadTTL | None:
    """A request's `ttl` (minutes, or {"ttl": minutes, "strategy": ...})."""
    if value is None:
        return None
    if isinstance(value, ThreadTimeToLive):
        return ThreadTTL(value.strategy, value.ttl)
    return ThreadTTL("delete", float(value))


def thread_not_found(thread_id: str) -> NotFound:
    return NotFound(f"Thread with ID {thread_id} not found")


def insert_langgraph_thread(conn: Connection, thread_id: str, metadata: dict | None, ttl: ThreadTTL | None = None) -> dict:
    body = new_thread(CreateThreadRequest(), thread_id)
    thread_store.insert(conn, body, updated_at=body["created_at"], extra={"metadata": metadata or {}, "config": {}})
    if ttl is not None:
        thread_ttls.set_ttl(conn, thread_id, ttl.strategy, ttl.minutes, body["created_at"])
    return body


def label_thread(conn: Connection, thread_id: str, assistant_id: str, thread, graph_id: str) -> dict:
    """The thread carries the graph and assistant it last ran, as LangGraph's do. `thread`:
    its (body, extra) as store.langgraph_threads.lock_thread read it, None when it was just made.
    Returns the thread's metadata."""
    thread_extra = thread[1] if thread is not None else {"metadata": {}, "config": {}}
    thread_body_metadata = (thread[0].get("metadata") or {}) if thread is not None else {}
    metadata = dict((thread_extra or {}).get("metadata", thread_body_metadata))
    if metadata.get("graph_id") != graph_id or metadata.get("assistant_id") != assistant_id:
        metadata.update(graph_id=graph_id, assistant_id=assistant_id)
        extra = {**(thread_extra or {"config": {}}), "metadata": metadata}
        langgraph_threads.set_extra(conn, thread_id, extra)
    return metadata


def append_messages(conn: Connection, thread_id: str, values, param: str = "values") -> None:
    parsed = parse_input(values if isinstance(values, dict) else {"messages": values}, param)
    if parsed.tool_outputs or parsed.system:
        raise Unprocessable("Only human and ai messages can be added to a thread's state")
    now = int(time.time())
    rows = [message_row(new_message(thread_id, CreateMessageRequest(**m), now=now)) for m in parsed.messages]
    message_store.insert_many(conn, rows)


class LangGraphThreads:
    def __init__(self, db: Database, graph_states: GraphThreadStates, dispatcher=None,
                 stop_graph_runs: Callable[[list[str]], None] = lambda run_ids: None,
                 default_ttl: ThreadTTL | None = None):
        self.db = db
        self.graph_states = graph_states
        self.dispatcher = dispatcher
        self.stop_graph_runs = stop_graph_runs  # a user graph's runs executing here
        self.default_ttl = default_ttl  # langgraph.json's checkpointer.ttl

    def _user_graph(self, snapshot: Snapshot) -> str | None:
        """The user graph whose checkpoints hold this thread's state (None: the built-in graph's)."""
        graph_id = snapshot.thread.metadata.get("graph_id")
        return graph_id if self.graph_states.serves(graph_id) else None

    async def _snapshot(self, thread_id: str) -> Snapshot:
        check_thread_id(thread_id)
        snapshot = (await self.db.query(lambda conn: load_snapshots(conn, [thread_id]))).get(thread_id)
        if snapshot is None:
            raise thread_not_found(thread_id)
        return snapshot

    async def create(self, req: ThreadCreate) -> dict:
        if req.thread_id is not None and not is_uuid(req.thread_id):
            raise Unprocessable("Invalid thread ID: must be a UUID")
        thread_id = req.thread_id or str(uuid.uuid4())
        graph_id = (req.metadata or {}).get("graph_id")
        through_graph = bool(req.supersteps) and self.graph_states.serves(graph_id)

        def put(conn):
            if thread_store.find(conn, thread_id) is not None:
                if (req.if_exists or "raise") == "raise":
                    raise Conflict(f"Thread with ID {thread_id} already exists")
                return None
            body = insert_langgraph_thread(conn, thread_id, req.metadata, _ttl_of(req.ttl) or self.default_ttl)
            if not through_graph:  # the built-in graph: its state is the thread's messages
                for i, superstep in enumerate(req.supersteps or []):
                    for j, change in enumerate(superstep.updates):
                        where = f"supersteps[{i}].updates[{j}].values"
                        if isinstance(change.values, dict) and set(change.values) - {"messages"}:
                            raise Unprocessable(f"{where}: only 'messages' can be written to a thread of the built-in "
                                                "graph; name the thread's graph in metadata.graph_id")
                        if change.values is not None:
                            append_messages(conn, thread_id, change.values, where)
            return body

        body = await self.db.transact(put)
        if body is not None and through_graph:
            try:
                summary = await self.graph_states.write_supersteps(graph_id, thread_id, req.supersteps)
            except Exception:
                await self.delete(thread_id)  # no half-made thread
                raise
            await self.db.transact(lambda conn: langgraph_threads.keep_graph_state(conn, thread_id, summary))
        if body is not None and not req.supersteps:  # new and empty: nothing to read back
            row = ThreadRow(thread_id, body["created_at"], body["created_at"], body, {"metadata": req.metadata or {}, "config": {}})
            return thread_wire(snapshot_of(row, Contents()))
        return thread_wire(await self._snapshot(thread_id))

    async def get(self, thread_id: str) -> dict:
        return thread_wire(await self._snapshot(thread_id))

    async def patch(self, thread_id: str, req: ThreadPatch) -> dict:
        check_thread_id(thread_id)

        def change(conn):
            row = langgraph_threads.row_of(conn, thread_id)
            if row is None:
                raise thread_not_found(thread_id)
            thread = ThreadRow(*row)
            extra = dict(thread.extra or {})
            extra["metadata"] = merged_metadata(thread.metadata, req.metadata)
            extra.setdefault("config", {})
            langgraph_threads.set_extra(conn, thread_id, extra, touch=True)
            if (ttl := _ttl_of(req.ttl)) is not None:
                thread_ttls.set_ttl(conn, thread_id, ttl.strategy, ttl.minutes, int(time.time()))

        await self.db.transact(change)
        return await self.get(thread_id)

    async def delete(self, thread_id: str) -> None:
        check_thread_id(thread_id)

        def remove(conn):
            if thread_store.find(conn, thread_id) is None:
                raise thread_not_found(thread_id)
            active = langgraph_threads.active_engine_runs(conn, thread_id)
            graph_runs = [run_id for run_id, _ in langgraph_runs.active_of_thread(conn, thread_id)]
            delete_thread(conn, thread_id)
            return active, graph_runs

        engine_runs, graph_runs = await self.db.transact(remove)
        for run_id in engine_runs:
            if self.dispatcher is not None:
                self.dispatcher.cancel(run_id)
        self.stop_graph_runs(graph_runs)

    async def prune(self, req: ThreadPrune) -> dict:
        """`delete`: the threads go, as DELETE /threads/{id}. `keep_latest`: a user graph's
        thread keeps only its latest checkpoint (history before it goes); a thread of the
        built-in graph has no checkpoints but its messages, which are its latest state.
        Counts the threads that exist; unknown ids are skipped."""
        for thread_id in req.thread_ids:
            check_thread_id(thread_id)
        pruned = 0
        for thread_id in dict.fromkeys(req.thread_ids):
            if req.strategy == "delete":
                try:
                    await self.delete(thread_id)
                except NotFound:
                    continue
                pruned += 1
            elif await self.db.transact(lambda conn, tid=thread_id: self._keep_latest(conn, tid)):
                pruned += 1
        return {"pruned_count": pruned}

    @staticmethod
    def _keep_latest(conn: Connection, thread_id: str) -> bool:
        if not langgraph_threads.exists(conn, thread_id):
            return False
        keep_latest_checkpoints(conn, thread_id)
        return True

    async def sweep_forever(self, interval: float) -> None:
        """In every server: threads whose TTL ran out are deleted, or pruned to their
        latest checkpoint (and given another TTL), by whichever server sees them first."""
        while True:
            try:
                await self.sweep_expired()
            except Exception as exc:  # the database is away: the next sweep tries again
                log.warning("could not sweep expired LangGraph threads: %s", exc)
            await asyncio.sleep(interval)

    async def sweep_expired(self) -> None:
        now = int(time.time())
        for thread_id, _project, strategy, minutes in await self.db.query(lambda conn: thread_ttls.due(conn, now)):
            if strategy == "delete":
                try:
                    await self.delete(thread_id)
                except NotFound:  # another server swept it first
                    pass
                continue

            def prune(conn, thread_id=thread_id, minutes=minutes):
                keep_latest_checkpoints(conn, thread_id)
                thread_ttls.rearm(conn, thread_id, now + round(minutes * 60))

            await self.db.transact(prune)

    async def copy(self, thread_id: str) -> dict:
        check_thread_id(thread_id)
        new_id = str(uuid.uuid4())

        def duplicate(conn):
            row = langgraph_threads.row_of(conn, thread_id)
            if row is None:
                raise thread_not_found(thread_id)
            thread = ThreadRow(*row)
            now = int(time.time())
            body = dict(thread.body, id=new_id, created_at=now)
            extra = {"metadata": thread.metadata, "config": thread.config}
            if thread.graph_state is not None:
                extra["graph_state"] = thread.graph_state
            thread_store.insert(conn, body, updated_at=now, extra=extra)
            copy_contents(conn, thread_id, new_id)
            copy_checkpoints(conn, thread_id, new_id)

        await self.db.transact(duplicate)
        return await self.get(new_id)

    async def search(self, req: ThreadSearch) -> tuple[list[dict], int, int | None]:
        if req.extract:
            check_paths(req.extract)
        descending = (req.sort_order or "desc").lower() == "desc"
        sort_by = req.sort_by or "created_at"
        # A built-in graph thread's values and the time of its last message come from its
        # rendered state: those filters and sorts read the threads the others keep.
        by_state = bool(req.values or sort_by in ("updated_at", "state_updated_at"))

        def read(conn):
            if not by_state:  # filtered, sorted and paged in the database
                rows, total = langgraph_threads.search(conn, ids=req.ids, metadata=req.metadata, status=req.status,
                                                       sort_by=sort_by, descending=descending, limit=req.limit,
                                                       offset=req.offset)
                page = load_snapshots(conn, [r[0] for r in rows])
                return [page[r[0]] for r in rows if r[0] in page], total
            rows = langgraph_threads.matching(conn, req.ids, req.metadata, req.status)
            snapshots = load_snapshots(conn, [r[0] for r in rows])
            candidates = [snapshots[r[0]] for r in rows if r[0] in snapshots]
            if req.values:
                candidates = [s for s in candidates if contained(s.values, req.values)]

            def key(snapshot):
                if sort_by == "thread_id":
                    return snapshot.thread.id
                if sort_by == "status":
                    return snapshot.status
                if sort_by in ("updated_at", "state_updated_at"):
                    return snapshot.updated_at
                return snapshot.thread.created_at

            ordered = sorted(enumerate(candidates), key=lambda p: (key(p[1]), p[0]), reverse=descending)
            return [s for _, s in ordered[req.offset: req.offset + req.limit]], len(ordered)

        snapshots, total = await self.db.query(read)
        threads = [thread_wire(s) for s in snapshots]
        page, total, following = search_page(threads, req.select, total, req.offset, req.limit)
        if req.extract:
            for shown, thread in zip(page, threads):
                shown["extracted"] = extracted(thread, req.extract)
        return page, total, following

    async def count(self, req: ThreadCount) -> int:
        _, total, _ = await self.search(ThreadSearch(metadata=req.metadata, values=req.values, status=req.status, limit=1))
        return total

    async def state(self, thread_id: str, subgraphs: bool = False) -> dict:
        snapshot = await self._snapshot(thread_id)
        if graph_id := self._user_graph(snapshot):
            return await self.graph_states.state(graph_id, thread_id, subgraphs=subgraphs)
        states = thread_states(snapshot)
        return states[0] if states else dict(EMPTY_STATE)

    async def state_at(self, thread_id: str, checkpoint_id: str, checkpoint: dict | None = None,
                       subgraphs: bool = False) -> dict:
        snapshot = await self._snapshot(thread_id)
        if graph_id := self._user_graph(snapshot):
            return await self.graph_states.state(graph_id, thread_id, checkpoint=checkpoint, checkpoint_id=checkpoint_id,
                                                 subgraphs=subgraphs)
        for state in thread_states(snapshot):
            if state["checkpoint_id"] == checkpoint_id:
                return state
        raise NotFound(f"Checkpoint {checkpoint_id} not found")

    async def history(self, thread_id: str, req: ThreadHistory) -> list[dict]:
        snapshot = await self._snapshot(thread_id)
        if graph_id := self._user_graph(snapshot):
            return await self.graph_states.history(graph_id, thread_id, limit=req.limit, before=req.before,
                                                   metadata=req.metadata, checkpoint=req.checkpoint)
        states = thread_states(snapshot)
        before = req.before
        if isinstance(before, dict):
            before = before.get("checkpoint_id") or (before.get("configurable") or {}).get("checkpoint_id")
        if before:
            ids = [s["checkpoint_id"] for s in states]
            states = states[ids.index(before) + 1:] if before in ids else []
        if req.metadata:
            states = [s for s in states if contained(s["metadata"], req.metadata)]
        return states[: req.limit]

    async def update_state(self, thread_id: str, req: ThreadStateUpdate) -> dict:
        snapshot = await self._snapshot(thread_id)
        if snapshot.status == "busy":
            raise Conflict(f"Thread {thread_id} has in-flight runs")
        if graph_id := self._user_graph(snapshot):
            written, summary = await self.graph_states.update(graph_id, thread_id, req.values, as_node=req.as_node,
                                                              checkpoint=req.checkpoint, checkpoint_id=req.checkpoint_id)
            await self.db.transact(lambda conn: langgraph_threads.keep_graph_state(conn, thread_id, summary))
            return written
        await self.db.transact(lambda conn: append_messages(conn, thread_id, req.values))
        states = thread_states(await self._snapshot(thread_id))
        checkpoint = states[0]["checkpoint"] if states else None
        return update_response(checkpoint)
