"""Runs of the user's graphs (langgraph.json), executed in this process by the langgraph
library with threadloom's checkpointer and store.

A run is a row of `langgraph_runs` that keeps its own status (pending → running →
success | error | interrupted). It executes in the process that created it, one run of a
thread at a time: a run starts when it is the oldest pending run of its thread and no run
of the thread is running — decided in one transaction under the thread's row lock, so
servers sharing a database take turns too. What the graph streams is published on the
event bus under the run's id, already in LangGraph's wire form, so any number of clients
(on any replica, with Redis) read the same events with the same ids; the stream of a run
ends with an internal END event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import AsyncIterator

from langchain_core.messages import BaseMessageChunk, convert_to_messages, message_chunk_to_message
from langgraph.types import Command, Send
from sqlalchemy import Connection

from threadloom import metrics
from threadloom.services.langgraph.catalog import GraphCatalog
from threadloom.services.langgraph.errors import Conflict
from threadloom.services.langgraph.graph_state import thread_config, thread_summary
from threadloom.services.langgraph.graph_values import dumps, jsonable
from threadloom.services.langgraph.run_rows import ACTIVE_STATUSES, RunRow, fetch_run
from threadloom.services.langgraph.stream import HEARTBEAT_SECONDS, StreamEvent
from threadloom.services.langgraph.timestamps import now_iso
from threadloom.runtime.events import EventBus
from threadloom.store import langgraph_runs, langgraph_threads, projects
from threadloom.store.database import Database
from threadloom.store.threads import delete_run_checkpoints

log = logging.getLogger("threadloom.langgraph")

END = "__end__"  # internal: the run's stream is over (never sent to clients)
REJECT_DETAIL = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
# How often a waiting run looks again whether its turn came (a run ending in this process
# wakes it at once; one ending on another server is seen at the next look).
TURN_POLL_SECONDS = 0.5
# A process stamps the runs it holds every SWEEP_SECONDS; a run whose stamp is older than
# STALE_SECONDS lost its process: running, it failed; pending, another process adopts it.
SWEEP_SECONDS = 5.0
STALE_SECONDS = 30


def graph_kind(row: RunRow) -> bool:
    return row.door.get("kind") == "graph"


def _command(command: dict | None):
    if not command:
        return None
    goto = command.get("goto")
    if isinstance(goto, dict) and "node" in goto:
        goto = Send(goto["node"], goto.get("input"))
    elif isinstance(goto, list):
        goto = [Send(g["node"], g.get("input")) if isinstance(g, dict) else g for g in goto]
    kwargs = {k: v for k, v in (("resume", command.get("resume")), ("update", command.get("update")), ("goto", goto))
              if v is not None}
    return Command(**kwargs)


def _fitted_context(graph, context: dict) -> dict:
    """The run's context cut to the keys the graph's context schema has (a configurable
    mirrored into it holds others, which a dataclass schema would refuse); whole when the
    graph declares no schema."""
    try:
        schema = graph.get_context_jsonschema()
    except Exception:  # a schema pydantic cannot describe: the context goes as it is
        return context
    properties = (schema or {}).get("properties")
    if not properties:
        return context
    return {key: value for key, value in context.items() if key in properties}


def _checkpoint_ref(config: dict | None) -> dict | None:
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("checkpoint_id"):
        return None
    return {key: configurable.get(key, "") for key in ("thread_id", "checkpoint_ns", "checkpoint_id")}


def _with_checkpoints(event: dict) -> dict:
    """A debug `checkpoint` event as LangGraph's server sends it: its payload also names the
    checkpoint and its parent as {thread_id, checkpoint_ns, checkpoint_id}."""
    payload = dict(event.get("payload") or {})
    payload["checkpoint"] = _checkpoint_ref(payload.get("config"))
    payload["parent_checkpoint"] = _checkpoint_ref(payload.get("parent_config"))
    return {**event, "payload": payload}


class StreamTranslation:
    """LangGraph's stream chunks → (event name, payload) as LangGraph's server sends them."""

    def __init__(self, requested: list[str], subgraphs: bool):
        self.requested = set(requested)
        self.subgraphs = subgraphs
        modes = self.requested - {"events", "messages-tuple"}
        if "messages-tuple" in self.requested:
            modes.add("messages")
        # An interrupt reaches the client in what it asked for: `updates` carry it as
        # {"__interrupt__": ...}, the last `values` hold it; other modes do not show it (as
        # LangGraph's server streams them).
        self.graph_modes = sorted(modes)  # empty for "events" alone: then the root streams no chunks
        self._messages: dict = {}

    def _name(self, mode: str, ns) -> str:
        return f"{mode}|{'|'.join(ns)}" if self.subgraphs and ns else mode

    def feed(self, item) -> list[tuple[str, object]]:
        if self.subgraphs:
            ns, mode, chunk = item
        else:
            (mode, chunk), ns = item, ()
        if mode == "messages":
            if "messages-tuple" in self.requested:
                return [(self._name("messages", ns), chunk)]
            if "messages" in self.requested:
                return self._message_events(chunk)
            return []
        if mode == "debug" and isinstance(chunk, dict) and chunk.get("type") == "checkpoint":
            chunk = _with_checkpoints(chunk)
        if mode in self.requested:
            return [(self._name(mode, ns), chunk)]
        return []

    def _message_events(self, chunk) -> list[tuple[str, object]]:
        message, meta = chunk
        if isinstance(message, dict):
            message = convert_to_messages([message])[0]
        out = []
        if message.id in self._messages:
            self._messages[message.id] += message
        else:
            self._messages[message.id] = message
            out.append(("messages/metadata", {message.id: {"metadata": meta}}))
        whole = self._messages[message.id]
        if isinstance(message, BaseMessageChunk):
            out.append(("messages/partial", [whole]))
        else:
            out.append(("messages/complete", [message_chunk_to_message(whole)]))
        return out


class GraphRuns:
    def __init__(self, db: Database, bus: EventBus, catalog: GraphCatalog, checkpointer, store):
        self.db = db
        self.bus = bus
        self.catalog = catalog
        self.checkpointer = checkpointer
        self.store = store
        self._executing: dict[str, asyncio.Task] = {}  # run id -> its task, in this process
        self._turns: dict[str, asyncio.Event] = {}  # thread id -> set when a run of it ends here
        self._tasks: set[asyncio.Task] = set()
        # SQLite serves one process: at its start, every run still held is this process's
        # predecessor's, stale at once.
        self._first_sweep_takes_all = db.is_sqlite

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- create -----------------------------------------------------------------------------

    def create_tx(self, conn: Connection, p, assistant: dict, kwargs: dict, thread_exists: bool,
                  thread_metadata: dict | None = None) -> tuple[RunRow, list[str]]:
        """In the run creation's transaction (the thread row is locked, the assistant read):
        apply the multitask strategy and insert the run. Returns the run and the runs it
        displaced (to cancel once committed). The thread's metadata goes into the run's
        config metadata, so its checkpoints carry it (history filters by it, as on LangGraph's
        server)."""
        active = langgraph_runs.active_of_thread(conn, p.thread_id) if thread_exists else []
        displaced: list[str] = []
        if active and p.strategy == "reject":
            raise Conflict(REJECT_DETAIL)
        if active and p.strategy in ("interrupt", "rollback"):
            displaced = [run_id for run_id, _ in active]
            waiting = [run_id for run_id, status in active if status == "pending"]
            if waiting:
                if p.strategy == "rollback":
                    langgraph_runs.delete_runs(conn, waiting)
                else:
                    langgraph_runs.set_status(conn, waiting, "interrupted")
        # The run's context and configurable mirror each other, as on LangGraph's server: a run
        # given a context has it as its configurable too, one given a configurable has it as
        # its context (graphs read either); over the assistant's.
        asked = ((p.payload.config or {}).get("configurable") or {})  # what the client configured
        run_context = p.payload.context or dict(asked)
        configurable = {**((assistant["config"] or {}).get("configurable") or {}), **(p.payload.context or {}),
                        **(kwargs["config"].get("configurable") or {})}  # the run's ids last: nothing overrides them
        if p.payload.checkpoint_id or p.payload.checkpoint:
            for key, value in (p.payload.checkpoint or {}).items():
                if key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map"):
                    configurable[key] = value
            if p.payload.checkpoint_id:
                configurable["checkpoint_id"] = p.payload.checkpoint_id
        config = {**(assistant["config"] or {}), **kwargs["config"], "configurable": configurable}
        config["metadata"] = {**(thread_metadata or {}), **(kwargs["config"].get("metadata") or {}),
                              "graph_id": assistant["graph_id"],
                              "assistant_id": p.assistant_id, "run_id": p.run_id, "thread_id": p.thread_id}
        now = now_iso()
        body = {
            "created_at": now,
            "updated_at": now,
            "metadata": p.payload.metadata or {},
            "multitask_strategy": p.strategy,
            "kwargs": kwargs,
            "_door": {
                "kind": "graph",
                "graph_id": assistant["graph_id"],
                "config": config,
                "context": {**(assistant["context"] or {}), **run_context},
                "not_before": time.time() + (p.payload.after_seconds or 0),
                "output": None,
                "error": None,
            },
        }
        langgraph_runs.insert(conn, {
            "id": p.run_id, "thread_id": p.thread_id, "assistant_id": p.assistant_id, "engine_run_id": None,
            "status": "pending", "created_at": int(time.time()), "body": body, "alive_at": int(time.time()),
        })
        if p.strategy == "rollback":  # a running run it displaces is deleted once it stops
            for run_id, status in active:
                current = fetch_run(conn, run_id) if status == "running" else None
                if current is not None:
                    langgraph_runs.set_body(conn, run_id, dict(current.body, _door=dict(current.door, rollback_requested=True)))
        return RunRow(p.run_id, p.thread_id, p.assistant_id, None, "pending", 0, body, None, None), displaced

    def started(self, row: RunRow, displaced: list[str]) -> None:
        """After the creation committed: cancel what it displaced, publish its first event,
        and queue its execution."""
        for run_id in displaced:
            self._cancel_local(run_id)
        self.bus.publish(row.id, "metadata", dumps({"run_id": row.id, "attempt": 1}).decode())
        self._spawn(self._execute(row.id, row.thread_id))

    # -- execution ----------------------------------------------------------------------------

    def _take_turn(self, conn: Connection, run_id: str, thread_id: str):
        """pending → running when it is this run's turn; None while it must wait; False when
        it is no longer pending (cancelled, deleted)."""
        langgraph_threads.lock_thread(conn, thread_id)
        row = fetch_run(conn, run_id)
        if row is None or row.stored_status != "pending":
            return False
        if time.time() < row.door.get("not_before", 0):
            return None
        if langgraph_runs.run_ahead(conn, thread_id, run_id, row.seq):
            return None
        body = dict(row.body, updated_at=now_iso())
        langgraph_runs.set_status(conn, [run_id], "running", body=body)
        row.stored_status, row.body = "running", body
        return row

    async def _wait_turn(self, run_id: str, thread_id: str) -> RunRow | None:
        while True:
            row = await self.db.transact(lambda conn: self._take_turn(conn, run_id, thread_id))
            if row is False:
                return None
            if row is not None:
                return row
            event = self._turns.setdefault(thread_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), TURN_POLL_SECONDS)
            except TimeoutError:
                pass

    def _wake(self, thread_id: str) -> None:
        event = self._turns.pop(thread_id, None)
        if event is not None:
            event.set()

    async def _execute(self, run_id: str, thread_id: str) -> None:
        self._executing[run_id] = asyncio.current_task()
        status, error = "error", None
        try:
            row = await self._wait_turn(run_id, thread_id)
            if row is None:
                return
            status, error = await self._run_graph(row)
        except asyncio.CancelledError:
            status = "interrupted"
        except Exception as exc:  # the store failed around the graph: the run cannot go on
            log.exception("LangGraph run %s failed outside its graph", run_id)
            error = {"error": type(exc).__name__, "message": str(exc)}
        finally:
            self._executing.pop(run_id, None)
            try:
                await self._finish(run_id, thread_id, status, error)
            finally:
                self.bus.publish(run_id, END, "null")
                self.bus.end(run_id)
                self._wake(thread_id)

    async def _run_graph(self, row: RunRow) -> tuple[str, dict | None]:
        door, kwargs = row.door, row.body["kwargs"]
        user_graph = self.catalog.user_graph(door["graph_id"])
        if user_graph is None:
            return "error", {"error": "GraphNotFound", "message": f"Graph '{door['graph_id']}' is not served here"}
        config = {**door["config"], "run_id": uuid.UUID(row.id)}
        graph = await user_graph.build(config, self.checkpointer, self.store)
        command = _command(kwargs.get("command"))
        graph_input = command if command is not None else kwargs.get("input")
        translation = StreamTranslation(kwargs["stream_mode"], bool(kwargs.get("subgraphs")))
        options = dict(
            context=_fitted_context(graph, door["context"] or {}),
            stream_mode=translation.graph_modes,
            subgraphs=bool(kwargs.get("subgraphs")),
            interrupt_before=kwargs.get("interrupt_before"),
            interrupt_after=kwargs.get("interrupt_after"),
            durability=kwargs.get("durability") or "async",
        )
        publish = self.bus.publish
        try:
            if "events" in translation.requested:
                async for event in graph.astream_events(graph_input, config, version="v2", **options):
                    if event["event"] == "on_chain_stream" and event["run_id"] == row.id:
                        for name, payload in translation.feed(event["data"]["chunk"]):
                            publish(row.id, name, dumps(payload).decode())
                    publish(row.id, "events", dumps(event).decode())
            else:
                async for item in graph.astream(graph_input, config, **options):
                    for name, payload in translation.feed(item):
                        publish(row.id, name, dumps(payload).decode())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = {"error": type(exc).__name__, "message": str(exc)}
            log.info("LangGraph run %s: the graph raised %s: %s", row.id, type(exc).__name__, exc)
            publish(row.id, "error", dumps(error).decode())
            return "error", error
        return "success", None

    async def _finish(self, run_id: str, thread_id: str, status: str, error: dict | None) -> None:
        """The run's final status, and the thread's state as its object shows it. A run
        rolled back is deleted with the checkpoints it wrote."""
        row = await self.db.query(lambda conn: fetch_run(conn, run_id))
        if row is None:
            return
        rollback = bool(row.door.get("rollback_requested"))
        if rollback:
            def forget(conn):
                langgraph_runs.delete_runs(conn, [run_id])
                delete_run_checkpoints(conn, thread_id, run_id)

            await self.db.transact(forget)
        summary = output = None
        user_graph = self.catalog.user_graph(row.door["graph_id"])
        if user_graph is not None and (row.stored_status == "running" or rollback):
            try:
                graph = await user_graph.build(row.door["config"], self.checkpointer, self.store)
                state = await graph.aget_state(thread_config(thread_id))
                summary = thread_summary(state, None if rollback else error)
                output = dict(summary["values"]) if isinstance(summary["values"], dict) else summary["values"]
                interrupts = [i for task in state.tasks for i in task.interrupts]
                if interrupts and isinstance(output, dict):
                    output["__interrupt__"] = jsonable(interrupts)
            except Exception:
                log.exception("could not read the state of thread %s after run %s", thread_id, run_id)

        def write(conn):
            current = fetch_run(conn, run_id)
            if current is not None and current.stored_status in ACTIVE_STATUSES:
                door = dict(current.door, output=output, error=error)
                body = dict(current.body, updated_at=now_iso(), _door=door)
                langgraph_runs.set_status(conn, [run_id], status, body=body)
            if summary is not None:
                langgraph_threads.keep_graph_state(conn, thread_id, summary)

        await self.db.transact(write)

    # -- processes that went away ---------------------------------------------------------------

    async def sweep(self) -> None:
        """Stamp the runs this process holds; fail the running runs of a process that is
        gone and adopt its pending ones."""
        now = int(time.time())
        held = list(self._executing)
        cutoff = now + 1 if self._first_sweep_takes_all else now - STALE_SECONDS
        self._first_sweep_takes_all = False

        def write(conn):
            if held:
                for run_id, body in langgraph_runs.stamp(conn, held, now):
                    if body["_door"].get("cancel_requested"):
                        self._cancel_local(run_id)
            adopted = []
            for run_id, thread_id, status, project, alive_at in langgraph_runs.stale(conn, cutoff, held):
                if status == "running":
                    row = fetch_run(conn, run_id)
                    error = {"error": "ServerStopped", "message": "The server executing this run stopped."}
                    body = dict(row.body, updated_at=now_iso(), _door=dict(row.door, error=error))
                    langgraph_runs.claim_stale(conn, run_id, alive_at, status="error", body=body, alive_at=now)
                elif langgraph_runs.claim_stale(conn, run_id, alive_at, alive_at=now):
                    adopted.append((run_id, thread_id, project))
            return adopted

        for run_id, thread_id, project in await self.db.transact(write):
            log.info("LangGraph run %s: adopted (the process that held it is gone)", run_id)
            self._spawn(self._adopt(run_id, thread_id, project))

    async def _adopt(self, run_id: str, thread_id: str, project: str) -> None:
        projects.current_project.set(project)  # the run reads and writes its project's store
        self.bus.publish(run_id, "metadata", dumps({"run_id": run_id, "attempt": 1}).decode())
        await self._execute(run_id, thread_id)

    # -- cancel ---------------------------------------------------------------------------------

    def _cancel_local(self, run_id: str) -> bool:
        task = self._executing.get(run_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def stop(self, run_ids: list[str]) -> None:
        """Their thread was deleted: those executing here stop (the others find their row gone)."""
        for run_id in run_ids:
            self._cancel_local(run_id)

    async def cancel(self, row: RunRow, action: str) -> None:
        if row.status == "pending":
            def write(conn):
                if action == "rollback":
                    langgraph_runs.delete_runs(conn, [row.id], status="pending")
                else:
                    langgraph_runs.set_status(conn, [row.id], "interrupted", only_if="pending")

            await self.db.transact(write)
            self._wake(row.thread_id)
        elif row.status == "running":
            if not self._cancel_local(row.id) or action == "rollback":
                # Executing on another server: it sees the request at its next sweep.
                await self.db.transact(lambda conn: self._request_cancel(conn, row.id, action == "rollback"))

    @staticmethod
    def _request_cancel(conn: Connection, run_id: str, rollback: bool) -> None:
        current = fetch_run(conn, run_id)
        if current is not None and current.stored_status == "running":
            door = dict(current.door, cancel_requested=True, rollback_requested=rollback)
            langgraph_runs.set_body(conn, run_id, dict(current.body, _door=door))

    # -- results and streams ------------------------------------------------------------------

    async def until_done(self, row: RunRow) -> RunRow:
        while row.status in ACTIVE_STATUSES:
            task = self._executing.get(row.id)
            if task is not None:
                await asyncio.wait({task})
            else:
                await asyncio.sleep(TURN_POLL_SECONDS)
            reloaded = await self.db.query(lambda conn: fetch_run(conn, row.id))
            if reloaded is None:
                return row
            row = reloaded
        return row

    async def result(self, row: RunRow) -> dict:
        row = await self.until_done(row)
        if row.status == "error":
            return {"__error__": row.door.get("error") or {"error": "Error", "message": "The run failed."}}
        if row.status == "interrupted":
            return {"__error__": {"error": "UserInterrupt", "message": "The run was cancelled."}}
        return row.door.get("output") or {}

    async def stream(self, row: RunRow, modes: list[str], *, last_event_id: str | None = None,
                     from_start: bool = True, cancel_on_disconnect: bool = False) -> AsyncIterator[list[StreamEvent]]:
        """The events of the run, in batches: from its first event (or after Last-Event-ID), or only
        what comes from now on."""
        wanted = _wanted(modes, row.body["kwargs"]["stream_mode"])
        finished = False
        metrics.ACTIVE_STREAMS.inc()
        try:
            if last_event_id is not None and last_event_id.isdigit():
                start = int(last_event_id) + 1
            elif from_start:
                start = 0
            else:
                start = await self.bus.position(row.id)
            if not await self.bus.has(row.id):
                # Its events are gone (it ended a while ago): nothing more will come.
                while (await self.db.query(lambda conn: fetch_run(conn, row.id)) or row).status in ACTIVE_STATUSES:
                    await asyncio.sleep(HEARTBEAT_SECONDS)
                    yield []  # quiet: a heartbeat
                finished = True
                return
            async for batch in self.bus.read_batches(row.id, start, idle=HEARTBEAT_SECONDS):
                if not batch:
                    yield []  # quiet: a heartbeat
                    continue
                chunks = []
                for event in batch:
                    if event.name == END:
                        finished = True
                        break
                    if wanted is None or _base(event.name) in wanted:
                        data = event.data if isinstance(event.data, str) else dumps(event.data).decode()
                        chunks.append((event.name, data, str(event.seq)))
                if chunks:
                    yield chunks
                if finished:
                    return
        finally:
            metrics.ACTIVE_STREAMS.dec()
            if not finished and cancel_on_disconnect:
                self._cancel_local(row.id)


def _base(name: str) -> str:
    return name.split("|", 1)[0]


def _wanted(modes: list[str], created_with: list[str]) -> set[str] | None:
    """Event names a join asking for `modes` gets (None: all the run publishes)."""
    if not modes or set(modes) == set(created_with):
        return None
    wanted = {"metadata", "error"} | set(modes)
    if "messages" in modes:
        wanted |= {"messages/metadata", "messages/partial", "messages/complete"}
    if "messages-tuple" in modes:
        wanted.add("messages")
    return wanted
