"""LangGraph runs on the engine.

A LangGraph run maps onto one engine run, which executes it exactly as it executes a run
of the OpenAI door. Creating a run on an idle thread writes its input messages, the engine
run and the LangGraph run in one transaction and hands the engine run to the dispatcher.
When the model calls tools the engine run waits in `requires_action`: the LangGraph run
ends there (status success, thread interrupted) and a later run whose `command.resume`
carries the outputs continues that same engine run (submit_tool_outputs).

A thread runs one run at a time. A run that cannot start at once waits `pending` (no
engine run yet) and the thread's pump starts it when the engine run ahead of it stops:
that is the `enqueue` strategy, and what `interrupt` / `rollback` do after cancelling the
run in flight. Nothing here writes per event: statuses are read from the engine run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator

from pydantic import ValidationError
from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select, update

from threadloom import metrics
from threadloom.domain.errors import InvalidRequest
from threadloom.domain.errors import NotFound as DomainNotFound
from threadloom.domain.message import CreateMessageRequest
from threadloom.domain.run import CreateRunRequest, SubmitToolOutputsRequest, ToolOutput
from threadloom.domain.run_status import ACTIVE
from threadloom.langgraph import graph
from threadloom.langgraph.assistants import check_config, load_for_run, resolve_assistant_id, view as assistant_view
from threadloom.langgraph.errors import BadRequest, Conflict, NotFound, Unprocessable
from threadloom.domain.run_status import STOP_EVENTS
from threadloom.langgraph.ids import check_run_id, check_thread_id, uuid7
from threadloom.langgraph.messages import ParsedInput, output_text, parse_input, render
from threadloom.langgraph.catalog import GraphCatalog
from threadloom.langgraph.graph_runs import GraphRuns, graph_kind
from threadloom.langgraph.ids import default_assistant_id
from threadloom.langgraph.requests import RunCreate
from threadloom.langgraph.run_rows import ACTIVE_STATUSES, ROLLBACK, RunRow, fetch_run, select_runs
from threadloom.langgraph.state import BUSY_ENGINE, L, M, R, S, T, interrupt_of, load_contents, load_snapshots
from threadloom.langgraph.stream import (
    HEARTBEAT,
    HEARTBEAT_SECONDS,
    StreamTranslator,
    error_payload,
    frame,
    parse_event_id,
)
from threadloom.langgraph.threads import insert_langgraph_thread
from threadloom.langgraph.timestamps import now_iso
from threadloom.runtime.events import EventBus
from threadloom.services.runs import RunService
from threadloom.store import tables
from threadloom.store.database import Database
from threadloom.store.threads import delete_thread
from threadloom.store.objects import thread_store

log = logging.getLogger("threadloom.langgraph")

REJECT_DETAIL = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."


_THREAD_FOR_UPDATE = select(T.c.body, T.c.extra).where(T.c.id == bindparam("_id")).with_for_update()
_ACTIVE_ENGINE_RUN = select(R.c.id, R.c.status, R.c.body).where(R.c.thread_id == bindparam("_thread"), R.c.status.in_(ACTIVE)).limit(1)
_PENDING_RUNS = select(L.c.id).where(L.c.thread_id == bindparam("_thread"), L.c.engine_run_id.is_(None), L.c.status.is_(None))
_INSERT_RUN = insert(L)


@dataclass
class Prepared:
    """A validated run request, before it touches the store."""

    run_id: str
    thread_id: str
    assistant_id: str
    payload: RunCreate
    modes: list[str]
    strategy: str
    if_not_exists: str
    temporary: bool
    parsed: ParsedInput
    resume: object
    has_resume: bool
    parse_error: Exception | None = None


@dataclass
class Created:
    row: RunRow | None = None
    engine_run: dict | None = None
    cancel: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)  # pending runs it interrupted or rolled back
    pump: bool = False


def expired_interrupt(conn: Connection, thread_id: str) -> dict | None:
    """The error of a resume that comes after the interrupt it answers expired (an engine
    run waits for tool outputs at most --run-ttl seconds)."""
    latest = conn.execute(select(R.c.status).where(R.c.thread_id == thread_id).order_by(R.c.seq.desc()).limit(1)).scalar()
    if latest != "expired":
        return None
    return {"error": "InvalidUpdateError",
            "message": "The interrupt this resume answers expired before it was resumed (the server's run TTL)."}


def pending_interrupt(conn: Connection, engine_run_id: str) -> tuple[str | None, str]:
    """The open tool-calls step of a run waiting for outputs, and the id of its interrupt."""
    for body in conn.execute(select(S.c.body).where(S.c.run_id == engine_run_id).order_by(S.c.seq.desc())).scalars():
        if body["type"] == "tool_calls" and body["status"] == "in_progress":
            return body["id"], interrupt_of(body["id"], [])["id"]
    return None, ""


def resume_outputs(value, calls: list[dict], interrupt_id: str) -> dict[str, str]:
    """The tool outputs a resume value carries: {tool_call_id: output}, a list of
    {tool_call_id, output|content} (tool messages), a list of outputs in call order, or
    one output when the model made one call; a map keyed by the interrupt id is unwrapped."""
    ids = [c["id"] for c in calls]
    if isinstance(value, dict) and interrupt_id in value and len(value) == 1:
        value = value[interrupt_id]
    if isinstance(value, dict) and "tool_call_id" in value:
        value = [value]
    mapping: dict[str, str] | None = None
    if isinstance(value, dict) and value and all(k in ids for k in value):
        mapping = {k: output_text(v) for k, v in value.items()}
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "tool_call_id" in v for v in value):
        mapping = {v["tool_call_id"]: output_text(v.get("output", v.get("content", ""))) for v in value}
    elif isinstance(value, list) and len(value) == len(ids) and len(ids) > 1:
        mapping = dict(zip(ids, (output_text(v) for v in value)))
    elif isinstance(value, dict) and value and all(str(k).startswith("call_") for k in value):
        mapping = None  # keyed by tool call ids, but not these
    elif len(ids) == 1 and value is not None:
        mapping = {ids[0]: output_text(value)}
    if mapping is None or sorted(mapping) != sorted(ids):
        names = ", ".join(f"{c['id']} ({c['function']['name']})" for c in calls)
        raise BadRequest(f"The resume value must answer the pending tool calls: {names}")
    return mapping


class LangGraphRuns:
    def __init__(self, db: Database, bus: EventBus, engine: RunService, catalog: GraphCatalog, graph_runs: GraphRuns):
        self.db = db
        self.bus = bus
        self.engine = engine
        self.catalog = catalog
        self.graph_runs = graph_runs
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, asyncio.Task] = {}
        self._started: dict[str, asyncio.Event] = {}
        self._consumers: dict[str, int] = {}
        self._released: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task] = set()
        self._recovered = False

    # -- helpers ---------------------------------------------------------------------------

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _recover_once(self) -> None:
        """After a restart, runs that were waiting (enqueued, or a rollback to finish) have
        nobody to start them: the first request of this door looks for them."""
        if self._recovered:
            return
        self._recovered = True
        self._spawn(self.recover())

    async def recover(self, only_idle: bool = False) -> None:
        """Pump the threads with waiting runs. `only_idle`: those whose engine run is not
        queued or executing (the process that was to start the next one is gone)."""
        def waiting(conn):
            stmt = select(L.c.thread_id).where(
                or_(and_(L.c.engine_run_id.is_(None), L.c.status.is_(None)), L.c.status == ROLLBACK))
            if only_idle:
                busy = select(R.c.thread_id).where(R.c.status.in_(BUSY_ENGINE))
                stmt = stmt.where(L.c.thread_id.not_in(busy))
            return conn.execute(stmt.distinct()).scalars().all()

        try:
            for thread_id in await self.db.query(waiting):
                await self.pump(thread_id)
        except Exception:
            log.exception("could not recover waiting LangGraph runs")

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
            await self.recover(only_idle=True)

    def _signal_started(self, run_id: str) -> None:
        event = self._started.pop(run_id, None)
        if event is not None:
            event.set()

    async def get_row(self, thread_id: str, run_id: str) -> RunRow:
        self._recover_once()
        check_thread_id(thread_id)
        check_run_id(run_id)

        def read(conn):
            if conn.execute(select(T.c.id).where(T.c.id == thread_id)).first() is None:
                raise NotFound(f"Thread with ID {thread_id} not found")
            return fetch_run(conn, run_id, thread_id)

        row = await self.db.query(read)
        if row is None or row.stored_status == ROLLBACK and row.engine_status not in BUSY_ENGINE:
            raise NotFound(f"Run {run_id} not found")
        return row

    async def _reload(self, run_id: str) -> RunRow | None:
        return await self.db.query(lambda conn: fetch_run(conn, run_id))

    async def _cancel_engine(self, thread_id: str, engine_run_id: str) -> None:
        try:
            await self.engine.cancel(thread_id, engine_run_id)
        except (InvalidRequest, DomainNotFound):
            pass  # it ended meanwhile

    # -- create -------------------------------------------------------------------------------

    def prepare(self, thread_id: str | None, payload: RunCreate) -> Prepared:
        stateless = thread_id is None
        if not stateless:
            check_thread_id(thread_id)
        assistant_id = resolve_assistant_id(payload.assistant_id, self.catalog.ids)
        command = payload.command
        has_resume = command is not None and "resume" in command.model_fields_set and command.resume is not None
        if has_resume and stateless:
            raise BadRequest("You must provide a thread_id when resuming.")
        if payload.input is not None and command is not None and (has_resume or command.update is not None):
            raise Unprocessable("Cannot specify both input and command")
        config = check_config(payload.config)
        if config.get("configurable") and payload.context:
            raise BadRequest(
                "Cannot specify both configurable and context. Prefer setting context alone. Context was introduced "
                "in LangGraph 0.6.0 and is the long term planned replacement for configurable."
            )
        try:
            parsed = self._parse_messages(payload, has_resume)
            parse_error = None
        except (BadRequest, Unprocessable) as exc:
            if not self.catalog.user_graphs:
                raise
            # A user graph takes any input; whether this run is one is known once its assistant is read.
            parsed, parse_error = ParsedInput(), exc
        modes = payload.stream_mode if isinstance(payload.stream_mode, list) else [payload.stream_mode or "values"]
        return Prepared(
            run_id=uuid7(),
            thread_id=thread_id or str(uuid.uuid4()),
            assistant_id=assistant_id,
            payload=payload,
            modes=modes or ["values"],
            strategy=payload.multitask_strategy or "enqueue",
            if_not_exists="create" if stateless else (payload.if_not_exists or "reject"),
            temporary=stateless and (payload.on_completion or "delete") == "delete",
            parsed=parsed,
            resume=command.resume if has_resume else (parsed.tool_outputs or None),
            has_resume=has_resume or bool(parsed.tool_outputs),
            parse_error=parse_error,
        )

    @staticmethod
    def _parse_messages(payload: RunCreate, has_resume: bool) -> ParsedInput:
        """The built-in graph's input: messages, or tool outputs answering its interrupt."""
        command = payload.command
        parsed = parse_input(payload.input)
        if command is not None and command.update is not None:
            update_value = command.update
            if isinstance(update_value, dict):
                extra = parse_input(update_value, "command.update")
                parsed.messages.extend(extra.messages)
                parsed.system.extend(extra.system)
                parsed.tool_outputs.update(extra.tool_outputs)
        if parsed.tool_outputs and (parsed.messages or has_resume):
            raise Unprocessable("Tool messages answer an interrupt and must be sent alone")
        return parsed

    async def create(self, prepared: Prepared) -> RunRow:
        self._recover_once()
        if self.catalog.user_graphs and self.catalog.user_graph(await self._graph_of(prepared.assistant_id)):
            return await self._create_graph_run(prepared)
        if prepared.parse_error is not None:
            raise prepared.parse_error
        created = await self.db.transact(lambda conn: self._create_tx(conn, prepared))
        if created.engine_run is not None:
            self.engine.announce(created.engine_run)
        for run_id in created.settled:
            self._signal_started(run_id)
        for engine_run_id in created.cancel:
            await self._cancel_engine(prepared.thread_id, engine_run_id)
        row = created.row
        if created.pump:
            await self.pump(prepared.thread_id)
            row = await self._reload(row.id) or row
        if prepared.temporary:
            self._spawn(self._delete_when_done(prepared.thread_id, prepared.run_id))
        return row

    async def _graph_of(self, assistant_id: str) -> str | None:
        for graph_id in self.catalog.ids:
            if assistant_id == default_assistant_id(graph_id):
                return graph_id
        return await self.db.query(lambda conn: conn.execute(
            select(tables.assistants.c.graph_id).where(tables.assistants.c.id == assistant_id)).scalar())

    async def _create_graph_run(self, p: Prepared) -> RunRow:
        def create(conn):
            assistant = load_for_run(conn, p.assistant_id, self.catalog)
            if assistant is None:
                raise NotFound("Thread or assistant not found.")
            lg_assistant = assistant_view(assistant)
            thread = conn.execute(_THREAD_FOR_UPDATE, {"_id": p.thread_id}).first()
            if thread is None and p.if_not_exists != "create":
                raise NotFound(f"Thread with ID {p.thread_id} not found")
            if thread is None:
                insert_langgraph_thread(conn, p.thread_id, {})
            self._label_thread(conn, p, thread, lg_assistant["graph_id"])
            kwargs = self._kwargs(p, check_config(p.payload.config), p.payload, lg_assistant["graph_id"])
            return self.graph_runs.create_tx(conn, p, lg_assistant, kwargs, thread is not None)

        row, displaced = await self.db.transact(create)
        self.graph_runs.started(row, displaced)
        if p.temporary:
            self._spawn(self._delete_when_done(p.thread_id, p.run_id))
        return row

    @staticmethod
    def _label_thread(conn: Connection, p: Prepared, thread, graph_id: str) -> None:
        """The thread carries the graph and assistant it last ran, as LangGraph's do."""
        thread_extra = thread[1] if thread is not None else {"metadata": {}, "config": {}}
        thread_body_metadata = (thread[0].get("metadata") or {}) if thread is not None else {}
        metadata = dict((thread_extra or {}).get("metadata", thread_body_metadata))
        if metadata.get("graph_id") != graph_id or metadata.get("assistant_id") != p.assistant_id:
            metadata.update(graph_id=graph_id, assistant_id=p.assistant_id)
            extra = {**(thread_extra or {"config": {}}), "metadata": metadata}
            conn.execute(update(T).where(T.c.id == p.thread_id).values(extra=extra))

    def _create_tx(self, conn: Connection, p: Prepared) -> Created:
        assistant = load_for_run(conn, p.assistant_id, self.catalog)
        if assistant is None:
            raise NotFound("Thread or assistant not found.")
        lg_assistant = assistant_view(assistant)
        engine_assistant = assistant[3]
        payload = p.payload
        config = dict(payload.config or {})
        run_configurable = dict(config.get("configurable") or {})
        assistant_config = lg_assistant["config"] or {}
        configurable = graph.effective_configurable(
            assistant_config.get("configurable"), lg_assistant["context"], run_configurable, payload.context
        )
        settings = graph.agent_settings(configurable, engine_assistant)
        engine_request = settings.run_request(engine_assistant["id"], p.parsed.system)
        try:
            CreateRunRequest.model_validate(engine_request)
        except ValidationError as exc:
            raise Unprocessable(f"Invalid run configuration: {exc.errors(include_url=False)[0]['msg']}") from None

        thread = conn.execute(_THREAD_FOR_UPDATE, {"_id": p.thread_id}).first()
        if thread is None:
            if p.if_not_exists != "create":
                raise NotFound(f"Thread with ID {p.thread_id} not found")
            insert_langgraph_thread(conn, p.thread_id, {})
        active = conn.execute(_ACTIVE_ENGINE_RUN, {"_thread": p.thread_id}).first()
        pending = conn.execute(_PENDING_RUNS, {"_thread": p.thread_id}).scalars().all()
        engine_busy = active is not None and active[1] != "requires_action"
        busy = engine_busy or bool(pending)
        if busy and p.strategy == "reject":
            raise Conflict(REJECT_DETAIL)
        created = Created()
        if busy and p.strategy in ("interrupt", "rollback"):
            if pending:
                if p.strategy == "rollback":
                    conn.execute(delete(L).where(L.c.id.in_(pending)))
                else:
                    conn.execute(update(L).where(L.c.id.in_(pending)).values(status="interrupted"))
                created.settled.extend(pending)
            if engine_busy:
                created.cancel.append(active[0])
                if p.strategy == "rollback":
                    self._mark_rollback(conn, active[0])

        graph_id = lg_assistant["graph_id"]
        self._label_thread(conn, p, thread, graph_id)

        now = now_iso()
        door = {
            "engine": engine_request,
            "messages": p.parsed.messages,
            "resume": p.resume,
            "has_resume": p.has_resume,
            "model": settings.model,
            "temperature": settings.temperature,
            "graph_id": graph_id,
            "temporary": p.temporary,
            "event_start": None,
            "base_ordinal": None,
            "resumed_step": None,
            "error": None,
        }
        body = {
            "created_at": now,
            "updated_at": now,
            "metadata": payload.metadata or {},
            "multitask_strategy": p.strategy,
            "kwargs": self._kwargs(p, config, payload, graph_id),
            "_door": door,
        }
        engine_run = None
        status = None
        if not busy:
            if active is not None:  # interrupted: resume it, or start over with new input
                if p.has_resume:  # refuse a resume that cannot answer the interrupt, now
                    calls = active[2]["required_action"]["submit_tool_outputs"]["tool_calls"]
                    resume_outputs(p.resume, calls, pending_interrupt(conn, active[0])[1])
                created.pump = True
            elif not p.parsed.messages:
                # Nothing to run: the graph ends where it is (a resume with nothing waiting is
                # ignored, as LangGraph does), unless the interrupt it answers expired.
                door["error"] = expired_interrupt(conn, p.thread_id) if p.has_resume else None
                status = "error" if door["error"] else "success"
            else:
                engine_run = self._start_fresh(conn, p.thread_id, door, engine_assistant)
        else:
            created.pump = True
        engine_run_id = engine_run["id"] if engine_run else None
        conn.execute(_INSERT_RUN, {
            "id": p.run_id, "thread_id": p.thread_id, "assistant_id": p.assistant_id,
            "engine_run_id": engine_run_id, "status": status, "created_at": int(time.time()), "body": body,
        })
        created.engine_run = engine_run
        created.row = RunRow(p.run_id, p.thread_id, p.assistant_id, engine_run_id, status, 0, body,
                             engine_run["status"] if engine_run else None, engine_run)
        return created

    @staticmethod
    def _kwargs(p: Prepared, config: dict, payload: RunCreate, graph_id: str) -> dict:
        configurable = {
            **(config.get("configurable") or {}),
            "run_id": p.run_id, "thread_id": p.thread_id, "graph_id": graph_id, "assistant_id": p.assistant_id,
        }
        return {
            "input": payload.input,
            "command": payload.command.model_dump(exclude_none=True) if payload.command else None,
            "config": {**config, "configurable": configurable, "metadata": payload.metadata or {}},
            "context": payload.context or {},
            "stream_mode": p.modes,
            "interrupt_before": payload.interrupt_before,
            "interrupt_after": payload.interrupt_after,
            "webhook": payload.webhook,
            "feedback_keys": payload.feedback_keys,
            "temporary": p.temporary,
            "subgraphs": bool(payload.stream_subgraphs),
            "resumable": bool(payload.stream_resumable),
            "checkpoint_during": payload.checkpoint_during if payload.checkpoint_during is not None else True,
            "durability": payload.durability or "async",
        }

    def _start_fresh(self, conn: Connection, thread_id: str, door: dict, engine_assistant: dict) -> dict:
        """Input messages and a queued engine run, in the caller's transaction."""
        run = self.engine.insert_run(
            conn, thread_store.get(conn, thread_id), CreateRunRequest.model_validate(door["engine"]),
            [CreateMessageRequest(**m) for m in door["messages"]], engine_assistant, messages_of_run=True)
        door["event_start"] = 0
        door["base_ordinal"] = time.time_ns()
        return run

    @staticmethod
    def _mark_rollback(conn: Connection, engine_run_id: str) -> None:
        """The LangGraph runs of an engine run being rolled back: deleted, with the engine
        run and what it wrote, once it stops. A run that resumed an interrupt does not own
        what came before it, so it is only interrupted."""
        for run_id, body in conn.execute(
            select(L.c.id, L.c.body).where(L.c.engine_run_id == engine_run_id, L.c.status.is_(None))
        ).all():
            owner = not body["_door"].get("resumed_step")
            conn.execute(update(L).where(L.c.id == run_id).values(status=ROLLBACK if owner else "interrupted"))

    # -- the thread's queue -------------------------------------------------------------------

    async def pump(self, thread_id: str) -> None:
        """Start the thread's oldest pending run if nothing runs ahead of it; else arrange to
        come back when the engine run ahead stops."""
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            for _ in range(16):
                positions = await self._waiting_positions(thread_id)
                decision = await self.db.transact(lambda conn: self._pump_tx(conn, thread_id, positions))
                kind = decision[0]
                if kind == "retry":
                    continue
                if kind == "idle":
                    break
                if kind == "wait":
                    self._wait_then_pump(thread_id, decision[1])
                    break
                if kind == "started":
                    self.engine.announce(decision[2])
                    self._signal_started(decision[1])
                elif kind == "settled":
                    self._signal_started(decision[1])
                elif kind == "supersede":
                    await self._cancel_engine(thread_id, decision[1])
                elif kind == "resume":
                    _, run_id, engine_run_id, outputs = decision
                    try:
                        await self.engine.submit_tool_outputs(thread_id, engine_run_id, SubmitToolOutputsRequest(
                            tool_outputs=[ToolOutput(tool_call_id=k, output=v) for k, v in outputs.items()]))
                    except (InvalidRequest, DomainNotFound) as exc:
                        await self._settle(run_id, "error", {"error": "InvalidUpdateError", "message": exc.message})
                    self._signal_started(run_id)
        if not lock.locked():
            self._locks.pop(thread_id, None)

    async def _settle(self, run_id: str, status: str, error: dict | None = None) -> None:
        def write(conn):
            row = fetch_run(conn, run_id)
            if row is None:
                return
            body = dict(row.body, updated_at=now_iso())
            body["_door"] = dict(row.door, error=error)
            conn.execute(update(L).where(L.c.id == run_id).values(status=status, body=body))

        await self.db.transact(write)

    async def _waiting_positions(self, thread_id: str) -> dict[str, int]:
        """Where the event log of the thread's run that waits for tool outputs stands (a
        resume streams from there). Read before the pump's transaction, as the bus may be
        remote; nothing publishes to a run while it waits, so it holds."""
        active = await self.db.query(lambda conn: conn.execute(_ACTIVE_ENGINE_RUN, {"_thread": thread_id}).first())
        if active is None or active[1] != "requires_action":
            return {}
        return {active[0]: await self.bus.position(active[0])}

    def _pump_tx(self, conn: Connection, thread_id: str, positions: dict[str, int]):
        if conn.execute(select(T.c.id).where(T.c.id == thread_id).with_for_update()).first() is None:
            return ("idle",)
        # Rollbacks finish first: what the rolled-back run wrote goes before anything starts.
        for engine_run_id in conn.execute(
            select(L.c.engine_run_id).where(L.c.thread_id == thread_id, L.c.status == ROLLBACK).distinct()
        ).scalars().all():
            status = conn.execute(select(R.c.status).where(R.c.id == engine_run_id)).scalar()
            if status in BUSY_ENGINE:
                return ("wait", engine_run_id)
            for table in (M, S):
                conn.execute(delete(table).where(table.c.run_id == engine_run_id))
            conn.execute(delete(R).where(R.c.id == engine_run_id))
            conn.execute(delete(L).where(L.c.engine_run_id == engine_run_id, L.c.status == ROLLBACK))
        row = conn.execute(
            select_runs().where(L.c.thread_id == thread_id, L.c.engine_run_id.is_(None), L.c.status.is_(None))
            .order_by(L.c.seq).limit(1)
        ).first()
        if row is None:
            return ("idle",)
        pending = RunRow(*row)
        door = dict(pending.door)
        active = conn.execute(_ACTIVE_ENGINE_RUN, {"_thread": thread_id}).first()
        if active is not None and active[1] != "requires_action":
            return ("wait", active[0])

        def settle(status: str, error: dict | None = None):
            body = dict(pending.body, updated_at=now_iso())
            body["_door"] = dict(door, error=error)
            conn.execute(update(L).where(L.c.id == pending.id).values(status=status, body=body))
            return ("settled", pending.id)

        if active is not None:
            engine_run_id, _, engine_body = active
            # The runs that stopped at this interrupt are done: they ended successfully there.
            conn.execute(update(L).where(L.c.engine_run_id == engine_run_id, L.c.status.is_(None)).values(status="success"))
            if not door["has_resume"]:
                return ("supersede", engine_run_id)
            calls = engine_body["required_action"]["submit_tool_outputs"]["tool_calls"]
            step_id, interrupt_id = pending_interrupt(conn, engine_run_id)
            try:
                outputs = resume_outputs(door["resume"], calls, interrupt_id)
            except BadRequest as exc:
                return settle("error", {"error": "InvalidUpdateError", "message": exc.message})
            if positions.get(engine_run_id) is None:
                return ("retry",)  # it began waiting after the position was read: read it again
            door.update(event_start=positions[engine_run_id], base_ordinal=time.time_ns(), resumed_step=step_id)
            body = dict(pending.body, _door=door)
            conn.execute(update(L).where(L.c.id == pending.id).values(engine_run_id=engine_run_id, body=body))
            return ("resume", pending.id, engine_run_id, outputs)
        if not door["messages"]:
            if door["has_resume"]:
                error = expired_interrupt(conn, thread_id)
                if error:
                    return settle("error", error)
            return settle("success")  # nothing to run, or a resume with nothing waiting: LangGraph ignores it
        assistants = tables.assistants
        engine_assistant = conn.execute(
            select(assistants.c.body).where(assistants.c.id == door["engine"]["assistant_id"])).scalar()
        if engine_assistant is None:
            return settle("error", {"error": "NotFound", "message": "The run's assistant was deleted."})
        run = self._start_fresh(conn, thread_id, door, engine_assistant)
        body = dict(pending.body, _door=door)
        conn.execute(update(L).where(L.c.id == pending.id).values(engine_run_id=run["id"], body=body))
        return ("started", pending.id, run)

    def _wait_then_pump(self, thread_id: str, engine_run_id: str) -> None:
        waiter = self._waiters.get(thread_id)
        if waiter is not None and not waiter.done():
            return

        async def wait():
            try:
                await self._until_stopped(engine_run_id)
            finally:
                self._waiters.pop(thread_id, None)
            await self.pump(thread_id)

        self._waiters[thread_id] = self._spawn(wait())

    async def _wait_started(self, run_id: str, timeout: float) -> bool:
        """Wait (up to timeout) for a pending run to start or settle; False on timeout."""
        event = self._started.setdefault(run_id, asyncio.Event())
        row = await self._reload(run_id)  # it may have started before the event existed
        if row is None or row.engine_run_id is not None or row.stored_status is not None:
            self._signal_started(run_id)
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            waiter = self._waiters.get(row.thread_id)
            if waiter is None or waiter.done():
                self._spawn(self.pump(row.thread_id))  # nobody is going to start it: look again
            return False

    async def _engine_status(self, engine_run_id: str) -> str | None:
        return await self.db.query(lambda conn: conn.execute(select(R.c.status).where(R.c.id == engine_run_id)).scalar())

    async def _until_stopped(self, engine_run_id: str) -> str | None:
        """Wait until the engine run is not queued or executing (done, or waiting for outputs)."""
        while True:
            position = await self.bus.position(engine_run_id)
            status = await self._engine_status(engine_run_id)
            if status not in BUSY_ENGINE:
                return status
            if not await self.bus.has(engine_run_id):
                await asyncio.sleep(0.5)  # executed elsewhere: poll
                continue
            async for batch in self.bus.read_batches(engine_run_id, position, idle=1.0):
                if not batch or any(e.name in STOP_EVENTS for e in batch):
                    break

    async def until_done(self, row: RunRow) -> RunRow:
        """Wait until the LangGraph run is neither pending nor running."""
        if graph_kind(row):
            return await self.graph_runs.until_done(row)
        while row.status in ACTIVE_STATUSES:
            if row.engine_run_id is None:
                await self._wait_started(row.id, 1.0)
            else:
                await self._until_stopped(row.engine_run_id)
            reloaded = await self._reload(row.id)
            if reloaded is None:
                return row
            row = reloaded
        return row

    # -- temporary threads (threadless runs) ----------------------------------------------------

    def hold(self, run_id: str) -> None:
        self._consumers[run_id] = self._consumers.get(run_id, 0) + 1

    def release(self, run_id: str) -> None:
        left = self._consumers.get(run_id, 0) - 1
        if left > 0:
            self._consumers[run_id] = left
            return
        self._consumers.pop(run_id, None)
        event = self._released.pop(run_id, None)
        if event is not None:
            event.set()

    async def _delete_when_done(self, thread_id: str, run_id: str) -> None:
        try:
            row = await self._reload(run_id)
            if row is not None:
                await self.until_done(row)
            while self._consumers.get(run_id):
                event = self._released.setdefault(run_id, asyncio.Event())
                await event.wait()

            await self.db.transact(lambda conn: delete_thread(conn, thread_id))
        except Exception:
            log.exception("could not delete the temporary thread %s", thread_id)

    # -- results --------------------------------------------------------------------------------

    async def result(self, row: RunRow) -> dict:
        """What wait and join return: the thread's values once the run stopped, with the
        interrupt it stopped at, or `__error__`."""
        if graph_kind(row):
            return await self.graph_runs.result(row)
        row = await self.until_done(row)
        if row.status == "error":
            error = row.door.get("error") or (error_payload(row.engine_body) if row.engine_body else None)
            return {"__error__": error or {"error": "Error", "message": "The run failed."}}
        if row.status == "timeout":
            return {"__error__": {"error": "TimeoutError", "message": "The run expired before it finished."}}
        snapshot = (await self.db.query(lambda conn: load_snapshots(conn, [row.thread_id]))).get(row.thread_id)
        if snapshot is None:
            return {}
        values = dict(snapshot.values)
        interrupt = snapshot.interrupt
        if interrupt is not None and snapshot.latest_run and snapshot.latest_run[0] == row.engine_run_id:
            values["__interrupt__"] = [interrupt]
        return values

    # -- streaming ----------------------------------------------------------------------------------

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
    ) -> AsyncIterator[bytes]:
        """SSE frames of one LangGraph run: from its start (or after Last-Event-ID), or
        only what comes from now on (a join of a stream that is not resumable)."""
        if graph_kind(row):
            async for chunk in self.graph_runs.stream(row, modes, last_event_id=last_event_id, from_start=from_start,
                                                      cancel_on_disconnect=cancel_on_disconnect):
                yield chunk
            return
        finished = False
        last = parse_event_id(last_event_id)
        if last is not None:
            from_start = True
        metrics.ACTIVE_STREAMS.inc()
        try:
            while row.engine_run_id is None and row.stored_status is None:
                if not await self._wait_started(row.id, HEARTBEAT_SECONDS):
                    yield HEARTBEAT
                reloaded = await self._reload(row.id)
                if reloaded is None:
                    finished = True
                    return
                row = reloaded
            translator = await self._translator(row, modes)
            if row.engine_run_id is None:  # settled without running (nothing to do, or an error)
                outputs = translator.start()
                if row.stored_status == "error" and row.door.get("error"):
                    outputs.append((len(outputs), "error", row.door["error"]))
                yield b"".join(frame(name, payload, f"0-{k}") for k, name, payload in outputs if last is None or (0, k) > last)
                finished = True
                return
            engine_run_id = row.engine_run_id
            start = row.door["event_start"] or 0
            skip_below = start if from_start else await self.bus.position(engine_run_id)
            head = []
            if skip_below <= start:
                for k, name, payload in translator.start():
                    if last is None or (start, k) > last:
                        head.append(frame(name, payload, f"{start}-{k}"))
            if not await self.bus.has(engine_run_id):
                # Its events are gone (it ended long ago, or runs in another process).
                if head:
                    yield b"".join(head)
                while await self._engine_status(engine_run_id) in BUSY_ENGINE:
                    await asyncio.sleep(HEARTBEAT_SECONDS)
                    yield HEARTBEAT
                finished = True
                return
            if head:
                yield b"".join(head)
            async for batch in self.bus.read_batches(engine_run_id, start, idle=HEARTBEAT_SECONDS):
                if not batch:
                    yield HEARTBEAT
                    continue
                chunks = []
                for event in batch:
                    outputs = translator.feed(event.name, event.data)
                    if event.seq >= skip_below:
                        position = event.seq + 1
                        for k, name, payload in outputs:
                            if last is None or (position, k) > last:
                                chunks.append(frame(name, payload, f"{position}-{k}"))
                    if translator.ended:
                        break
                if chunks:
                    yield b"".join(chunks)
                if translator.ended:
                    finished = True
                    return
        finally:
            metrics.ACTIVE_STREAMS.dec()
            if not finished and cancel_on_disconnect:
                self.cancel_later(row)

    # -- reading, cancelling, deleting ---------------------------------------------------------------

    async def list(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[dict]:
        check_thread_id(thread_id)

        def read(conn):
            if conn.execute(select(T.c.id).where(T.c.id == thread_id)).first() is None:
                raise NotFound(f"Thread with ID {thread_id} not found")
            return [RunRow(*r) for r in conn.execute(select_runs().where(L.c.thread_id == thread_id).order_by(L.c.seq.desc()))]

        rows = [r for r in await self.db.query(read) if r.stored_status != ROLLBACK]
        if status:
            rows = [r for r in rows if r.status == status]
        return [r.wire() for r in rows[offset: offset + limit]]

    def cancel_later(self, row: RunRow) -> None:
        """The client went away from a run it asked to cancel on disconnect."""
        self._spawn(self.cancel(row.thread_id, row.id, wait=False, action="interrupt"))

    async def cancel(self, thread_id: str, run_id: str, *, wait: bool, action: str) -> RunRow:
        row = await self.get_row(thread_id, run_id)
        if graph_kind(row):
            await self.graph_runs.cancel(row, action)
            return await self.graph_runs.until_done(row) if wait else row
        status = row.status
        if row.engine_run_id is None and status == "pending":
            def write(conn):
                if action == "rollback":
                    conn.execute(delete(L).where(L.c.id == run_id, L.c.engine_run_id.is_(None)))
                else:
                    conn.execute(update(L).where(L.c.id == run_id, L.c.engine_run_id.is_(None)).values(status="interrupted"))

            await self.db.transact(write)
            self._signal_started(run_id)
        elif status in ACTIVE_STATUSES and row.engine_run_id is not None:
            if action == "rollback":
                await self.db.transact(lambda conn: self._mark_rollback(conn, row.engine_run_id))
            await self._cancel_engine(thread_id, row.engine_run_id)
            self._wait_then_pump(thread_id, row.engine_run_id)
        if wait:
            reloaded = await self._reload(run_id)
            if reloaded is not None:
                row = await self.until_done(reloaded)
            await self.pump(thread_id)
        return row

    async def cancel_many(self, thread_id: str | None, run_ids: list[str] | None, status: str | None, action: str) -> None:
        if status is not None:
            if thread_id is not None or run_ids is not None:
                raise Unprocessable("Cannot specify 'thread_id' or 'run_ids' when using 'status'")
            wanted = ("pending", "running") if status == "all" else (status,)
            rows = [RunRow(*r) for r in await self.db.query(lambda conn: conn.execute(select_runs()).all())]
            targets = [(r.thread_id, r.id) for r in rows if r.status in wanted]
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
            raise NotFound("No runs found to cancel.")

    async def delete(self, thread_id: str, run_id: str) -> None:
        row = await self.get_row(thread_id, run_id)
        if graph_kind(row) and row.status in ACTIVE_STATUSES:
            await self.graph_runs.cancel(row, "interrupt")
        if row.status in ACTIVE_STATUSES and row.engine_run_id is not None:
            await self._cancel_engine(thread_id, row.engine_run_id)
        await self.db.transact(lambda conn: conn.execute(delete(L).where(L.c.id == run_id)))
        self._signal_started(run_id)
        await self.pump(thread_id)

