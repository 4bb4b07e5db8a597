"""The built-in graph's runs on the engine, one thread at a time.

A LangGraph run of the built-in `agent` graph maps onto one engine run, which executes it
exactly as it executes a run of the OpenAI door. Creating a run on an idle thread writes
its input messages, the engine run and the LangGraph run in one transaction and hands the
engine run to the dispatcher. When the model calls tools the engine run waits in
`requires_action`: the LangGraph run ends there (status success, thread interrupted) and
a later run whose `command.resume` carries the outputs continues that same engine run
(submit_tool_outputs).

A thread runs one run at a time. A run that cannot start at once waits `pending` (no
engine run yet) and the thread's pump starts it when the engine run ahead of it stops:
that is the `enqueue` strategy, and what `interrupt` / `rollback` do after cancelling the
run in flight. Nothing here writes per event: statuses are read from the engine run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import Connection

from threadloom.domain.errors import InvalidRequest
from threadloom.domain.errors import NotFound as DomainNotFound
from threadloom.domain.message import CreateMessageRequest
from threadloom.domain.run import CreateRunRequest, SubmitToolOutputsRequest, ToolOutput
from threadloom.domain.run_status import STOP_EVENTS
from threadloom.services.langgraph import graph
from threadloom.services.langgraph.assistants import load_for_run, view as assistant_view
from threadloom.services.langgraph.background import BackgroundTasks
from threadloom.services.langgraph.catalog import GraphCatalog
from threadloom.services.langgraph.errors import BadRequest, Conflict, NotFound, Unprocessable
from threadloom.services.langgraph.messages import output_text
from threadloom.services.langgraph.run_requests import REJECT_DETAIL, Prepared, run_kwargs
from threadloom.services.langgraph.run_rows import ACTIVE_STATUSES, ROLLBACK, RunRow, fetch_run
from threadloom.services.langgraph.state import BUSY_ENGINE, interrupt_of, load_snapshots
from threadloom.services.langgraph.stream import error_payload
from threadloom.services.langgraph.threads import insert_langgraph_thread, label_thread
from threadloom.services.langgraph.user_graphs import ThreadTTL
from threadloom.services.langgraph.timestamps import now_iso
from threadloom.runtime.events import EventBus
from threadloom.services.runs import RunService
from threadloom.store import langgraph_engine_runs, langgraph_runs, langgraph_threads
from threadloom.store.database import Database
from threadloom.store.objects import thread_store

log = logging.getLogger("threadloom.langgraph")



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
    if langgraph_engine_runs.latest_engine_status(conn, thread_id) != "expired":
        return None
    return {"error": "InvalidUpdateError",
            "message": "The interrupt this resume answers expired before it was resumed (the server's run TTL)."}


def pending_interrupt(conn: Connection, engine_run_id: str) -> tuple[str | None, str]:
    """The open tool-calls step of a run waiting for outputs, and the id of its interrupt."""
    for body in langgraph_engine_runs.step_bodies_newest_first(conn, engine_run_id):
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



# What one look at a thread's queue decided (the pump acts on it after the transaction).
@dataclass
class Idle:
    pass


@dataclass
class Retry:
    """The run ahead began waiting for tool outputs after its event position was read."""


@dataclass
class Wait:
    engine_run_id: str  # come back when it stops


@dataclass
class Started:
    run_id: str
    engine_run: dict


@dataclass
class Settled:
    run_id: str


@dataclass
class Supersede:
    engine_run_id: str  # the interrupt it waits at is answered by new input: cancel it


@dataclass
class Resume:
    run_id: str
    engine_run_id: str
    outputs: dict[str, str]


class EngineRunQueue:
    """The built-in graph's runs: their creation, each thread's queue, their waits."""

    def __init__(self, db: Database, bus: EventBus, engine: RunService, catalog: GraphCatalog,
                 background: BackgroundTasks, default_ttl: ThreadTTL | None = None):
        self.db = db
        self.default_ttl = default_ttl  # of the threads a run makes (if_not_exists="create")
        self.bus = bus
        self.engine = engine
        self.catalog = catalog
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, asyncio.Task] = {}
        self._started: dict[str, asyncio.Event] = {}
        self._spawn = background.spawn
        self._recovered = False

    async def create(self, prepared: Prepared) -> RunRow:
        """Create a run (its engine run too, when it can start at once) and act on what
        the creation displaced."""
        created = await self.db.transact(lambda conn: self.create_tx(conn, prepared))
        if created.engine_run is not None:
            self.engine.announce(created.engine_run)
        for run_id in created.settled:
            self.signal_started(run_id)
        for engine_run_id in created.cancel:
            await self.cancel_engine(prepared.thread_id, engine_run_id)
        row = created.row
        if created.pump:
            await self.pump(prepared.thread_id)
            row = await self.reload(row.id) or row
        return row

    def recover_once(self) -> None:
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
            return langgraph_engine_runs.threads_with_waiting_runs(conn, only_idle)

        try:
            for thread_id in await self.db.query(waiting):
                await self.pump(thread_id)
        except Exception:
            log.exception("could not recover waiting LangGraph runs")

    def signal_started(self, run_id: str) -> None:
        event = self._started.pop(run_id, None)
        if event is not None:
            event.set()

    async def reload(self, run_id: str) -> RunRow | None:
        return await self.db.query(lambda conn: fetch_run(conn, run_id))

    async def cancel_engine(self, thread_id: str, engine_run_id: str) -> None:
        try:
            await self.engine.cancel(thread_id, engine_run_id)
        except (InvalidRequest, DomainNotFound):
            pass  # it ended meanwhile

    def create_tx(self, conn: Connection, p: Prepared) -> Created:
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

        thread = langgraph_threads.lock_thread(conn, p.thread_id)
        if thread is None:
            if p.if_not_exists != "create":
                raise NotFound(f"Thread with ID {p.thread_id} not found")
            insert_langgraph_thread(conn, p.thread_id, {}, self.default_ttl)
        active = langgraph_engine_runs.active_engine_run(conn, p.thread_id)
        pending = langgraph_engine_runs.waiting_run_ids(conn, p.thread_id)
        engine_busy = active is not None and active[1] != "requires_action"
        busy = engine_busy or bool(pending)
        if busy and p.strategy == "reject":
            raise Conflict(REJECT_DETAIL)
        created = Created()
        if busy and p.strategy in ("interrupt", "rollback"):
            if pending:
                if p.strategy == "rollback":
                    langgraph_runs.delete_runs(conn, pending)
                else:
                    langgraph_runs.set_status(conn, pending, "interrupted")
                created.settled.extend(pending)
            if engine_busy:
                created.cancel.append(active[0])
                if p.strategy == "rollback":
                    self.mark_rollback(conn, active[0])

        graph_id = lg_assistant["graph_id"]
        label_thread(conn, p.thread_id, p.assistant_id, thread, graph_id)

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
            "kwargs": run_kwargs(p, config, payload, graph_id),
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
                engine_run = self.start_fresh(conn, p.thread_id, door, engine_assistant)
        else:
            created.pump = True
        engine_run_id = engine_run["id"] if engine_run else None
        langgraph_runs.insert(conn, {
            "id": p.run_id, "thread_id": p.thread_id, "assistant_id": p.assistant_id,
            "engine_run_id": engine_run_id, "status": status, "created_at": int(time.time()), "body": body,
        })
        created.engine_run = engine_run
        created.row = RunRow(p.run_id, p.thread_id, p.assistant_id, engine_run_id, status, 0, body,
                             engine_run["status"] if engine_run else None, engine_run)
        return created

    def start_fresh(self, conn: Connection, thread_id: str, door: dict, engine_assistant: dict) -> dict:
        """Input messages and a queued engine run, in the caller's transaction."""
        run = self.engine.insert_run(
            conn, thread_store.get(conn, thread_id), CreateRunRequest.model_validate(door["engine"]),
            [CreateMessageRequest(**m) for m in door["messages"]], engine_assistant, messages_of_run=True)
        door["event_start"] = 0
        door["base_ordinal"] = time.time_ns()
        return run

    @staticmethod
    def mark_rollback(conn: Connection, engine_run_id: str) -> None:
        """The LangGraph runs of an engine run being rolled back: deleted, with the engine
        run and what it wrote, once it stops. A run that resumed an interrupt does not own
        what came before it, so it is only interrupted."""
        for run_id, body in langgraph_engine_runs.runs_of_engine_run(conn, engine_run_id):
            owner = not body["_door"].get("resumed_step")
            langgraph_runs.set_status(conn, [run_id], ROLLBACK if owner else "interrupted")

    async def pump(self, thread_id: str) -> None:
        """Start the thread's oldest pending run if nothing runs ahead of it; else arrange to
        come back when the engine run ahead stops."""
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            for _ in range(16):
                positions = await self._waiting_positions(thread_id)
                decision = await self.db.transact(lambda conn: self._pump_tx(conn, thread_id, positions))
                if isinstance(decision, Retry):
                    continue
                if isinstance(decision, Idle):
                    break
                if isinstance(decision, Wait):
                    self.wait_then_pump(thread_id, decision.engine_run_id)
                    break
                if isinstance(decision, Started):
                    self.engine.announce(decision.engine_run)
                    self.signal_started(decision.run_id)
                elif isinstance(decision, Settled):
                    self.signal_started(decision.run_id)
                elif isinstance(decision, Supersede):
                    await self.cancel_engine(thread_id, decision.engine_run_id)
                elif isinstance(decision, Resume):
                    try:
                        await self.engine.submit_tool_outputs(thread_id, decision.engine_run_id, SubmitToolOutputsRequest(
                            tool_outputs=[ToolOutput(tool_call_id=k, output=v) for k, v in decision.outputs.items()]))
                    except (InvalidRequest, DomainNotFound) as exc:
                        await self._settle(decision.run_id, "error", {"error": "InvalidUpdateError", "message": exc.message})
                    self.signal_started(decision.run_id)
        if not lock.locked():
            self._locks.pop(thread_id, None)

    async def _settle(self, run_id: str, status: str, error: dict | None = None) -> None:
        def write(conn):
            row = fetch_run(conn, run_id)
            if row is None:
                return
            body = dict(row.body, updated_at=now_iso())
            body["_door"] = dict(row.door, error=error)
            langgraph_runs.set_status(conn, [run_id], status, body=body)

        await self.db.transact(write)

    async def _waiting_positions(self, thread_id: str) -> dict[str, int]:
        """Where the event log of the thread's run that waits for tool outputs stands (a
        resume streams from there). Read before the pump's transaction, as the bus may be
        remote; nothing publishes to a run while it waits, so it holds."""
        active = await self.db.query(lambda conn: langgraph_engine_runs.active_engine_run(conn, thread_id))
        if active is None or active[1] != "requires_action":
            return {}
        return {active[0]: await self.bus.position(active[0])}

    def _pump_tx(self, conn: Connection, thread_id: str, positions: dict[str, int]):
        if langgraph_threads.lock_thread(conn, thread_id) is None:
            return Idle()
        # Rollbacks finish first: what the rolled-back run wrote goes before anything starts.
        for engine_run_id in langgraph_engine_runs.rolled_back_engine_runs(conn, thread_id):
            if langgraph_engine_runs.engine_status(conn, engine_run_id) in BUSY_ENGINE:
                return Wait(engine_run_id)
            langgraph_engine_runs.forget_engine_run(conn, engine_run_id)
        row = langgraph_engine_runs.oldest_waiting(conn, thread_id)
        if row is None:
            return Idle()
        pending = RunRow(*row)
        door = dict(pending.door)
        active = langgraph_engine_runs.active_engine_run(conn, thread_id)
        if active is not None and active[1] != "requires_action":
            return Wait(active[0])

        def settle(status: str, error: dict | None = None):
            body = dict(pending.body, updated_at=now_iso())
            body["_door"] = dict(door, error=error)
            langgraph_runs.set_status(conn, [pending.id], status, body=body)
            return Settled(pending.id)

        if active is not None:
            engine_run_id, _, engine_body = active
            # The runs that stopped at this interrupt are done: they ended successfully there.
            langgraph_engine_runs.settle_runs_of_engine_run(conn, engine_run_id, "success")
            if not door["has_resume"]:
                return Supersede(engine_run_id)
            calls = engine_body["required_action"]["submit_tool_outputs"]["tool_calls"]
            step_id, interrupt_id = pending_interrupt(conn, engine_run_id)
            try:
                outputs = resume_outputs(door["resume"], calls, interrupt_id)
            except BadRequest as exc:
                return settle("error", {"error": "InvalidUpdateError", "message": exc.message})
            if positions.get(engine_run_id) is None:
                return Retry()  # it began waiting after the position was read: read it again
            door.update(event_start=positions[engine_run_id], base_ordinal=time.time_ns(), resumed_step=step_id)
            body = dict(pending.body, _door=door)
            langgraph_engine_runs.start(conn, pending.id, engine_run_id, body)
            return Resume(pending.id, engine_run_id, outputs)
        if not door["messages"]:
            if door["has_resume"]:
                error = expired_interrupt(conn, thread_id)
                if error:
                    return settle("error", error)
            return settle("success")  # nothing to run, or a resume with nothing waiting: LangGraph ignores it
        engine_assistant = langgraph_engine_runs.assistant_body(conn, door["engine"]["assistant_id"])
        if engine_assistant is None:
            return settle("error", {"error": "NotFound", "message": "The run's assistant was deleted."})
        run = self.start_fresh(conn, thread_id, door, engine_assistant)
        body = dict(pending.body, _door=door)
        langgraph_engine_runs.start(conn, pending.id, run["id"], body)
        return Started(pending.id, run)

    def wait_then_pump(self, thread_id: str, engine_run_id: str) -> None:
        waiter = self._waiters.get(thread_id)
        if waiter is not None and not waiter.done():
            return

        async def wait():
            try:
                await self.until_stopped(engine_run_id)
            finally:
                self._waiters.pop(thread_id, None)
            await self.pump(thread_id)

        self._waiters[thread_id] = self._spawn(wait())

    async def wait_started(self, run_id: str, timeout: float) -> bool:
        """Wait (up to timeout) for a pending run to start or settle; False on timeout."""
        event = self._started.setdefault(run_id, asyncio.Event())
        row = await self.reload(run_id)  # it may have started before the event existed
        if row is None or row.engine_run_id is not None or row.stored_status is not None:
            self.signal_started(run_id)
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            waiter = self._waiters.get(row.thread_id)
            if waiter is None or waiter.done():
                self._spawn(self.pump(row.thread_id))  # nobody is going to start it: look again
            return False

    async def engine_status(self, engine_run_id: str) -> str | None:
        return await self.db.query(lambda conn: langgraph_engine_runs.engine_status(conn, engine_run_id))

    async def until_stopped(self, engine_run_id: str) -> str | None:
        """Wait until the engine run is not queued or executing (done, or waiting for outputs)."""
        while True:
            position = await self.bus.position(engine_run_id)
            status = await self.engine_status(engine_run_id)
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
        while row.status in ACTIVE_STATUSES:
            if row.engine_run_id is None:
                await self.wait_started(row.id, 1.0)
            else:
                await self.until_stopped(row.engine_run_id)
            reloaded = await self.reload(row.id)
            if reloaded is None:
                return row
            row = reloaded
        return row

    async def result(self, row: RunRow) -> dict:
        """What wait and join return: the thread's values once the run stopped, with the
        interrupt it stopped at, or `__error__`."""
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
