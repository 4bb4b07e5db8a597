"""Runs and run steps: create (with or without a new thread), read, modify, cancel,
submit tool outputs. Creating queues the run and returns at once; the dispatcher
executes it."""

from __future__ import annotations

import time

from threadloom.domain.errors import Conflict, InvalidRequest, NotFound
from threadloom.domain.metadata import check_metadata
from threadloom.domain.run import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    SubmitToolOutputsRequest,
    new_run,
    new_run_state,
)
from threadloom.domain.run_status import TERMINAL
from threadloom.domain.thread import CreateThreadRequest
from threadloom.engine.run_writer import RunWriter, StaleRun, end_stored_run, log_run_state
from threadloom.runtime.events import EventBus
from threadloom.store import runs as run_queries
from threadloom.store.projects import current_project
from threadloom.store.database import Database
from threadloom.store.objects import assistant_store, message_store, run_store, step_store, thread_store
from threadloom.store.pagination import PageQuery, page_wire
from threadloom.domain.tools import tool_resources_wire
from threadloom.services.threads import insert_thread, message_row, thread_messages
from threadloom.services.tool_resources import ToolResourceLinker
from threadloom.store.thread_lock import active_run_id, lock_thread


def _run_columns(run: dict, state: dict) -> dict:
    return {
        "thread_id": run["thread_id"],
        "assistant_id": run["assistant_id"],
        "status": run["status"],
        "expires_at": run["expires_at"],
        "attempt": 0,
        "state": state,
    }


class RunService:
    def __init__(self, db: Database, bus: EventBus, writer: RunWriter, dispatcher, linker: ToolResourceLinker, run_ttl: int = 600):
        self.linker = linker
        self.run_ttl = run_ttl
        self.db = db
        self.bus = bus
        self.writer = writer
        self.dispatcher = dispatcher

    def insert_run(self, conn, thread: dict, req, extra_messages, assistant: dict | None = None, include: tuple = (),
                   messages_of_run: bool = False) -> dict:
        """Queue a run and the messages it adds to its thread, in the caller's transaction:
        how both doors create an engine run (then `announce` it once committed).
        `messages_of_run`: the messages are the run's own input (the LangGraph door's)."""
        thread_id = thread["id"]
        if assistant is None:
            assistant = assistant_store.get(conn, req.assistant_id)
        run = new_run(thread_id, assistant, req, ttl=self.run_ttl)
        self.linker.check_tools(run["tools"])
        if getattr(req, "tool_resources", None) is not None:
            # create_thread_and_run's own resources stand in for the assistant's in this run.
            run["tool_resources"] = self.linker.resolve(conn, tool_resources_wire(req.tool_resources))
        state = new_run_state(assistant, req, include)
        messages = thread_messages(thread_id, extra_messages, run["id"] if messages_of_run else None)
        message_store.insert_many(conn, [message_row(m) for m in messages])
        self.linker.attach(conn, thread, messages)
        run_store.insert(conn, run, **self.queue_columns(run, state))
        return run

    def queue_columns(self, run: dict, state: dict) -> dict:
        """The columns of a run being queued: reserved for this process when it executes
        runs (both doors create runs with these)."""
        project = current_project.get()
        if project is not None:
            # Whoever executes the run (another process, after a restart) works in its project.
            state["project"] = project
        return {**_run_columns(run, state), **self.dispatcher.reservation()}

    def announce(self, run: dict) -> None:
        """A run was queued (by either door): say so, and hand it over."""
        log_run_state(run)
        self.bus.publish(run["id"], "thread.run.created", run)
        self.bus.publish(run["id"], "thread.run.queued", run)
        self.dispatcher.submit(run["id"])

    async def create(self, thread_id: str, req: CreateRunRequest, include: tuple = ()) -> dict:
        check_metadata(req.metadata)
        for message in req.additional_messages or []:
            check_metadata(message.metadata, "additional_messages.metadata")

        def insert(conn):
            thread = lock_thread(conn, thread_id)
            active = active_run_id(conn, thread_id)
            if active:
                raise Conflict(f"Thread {thread_id} already has an active run {active}.")
            return self.insert_run(conn, thread, req, req.additional_messages, include=include)

        run = await self.db.transact(insert)
        self.linker.wake_ingestion()
        self.announce(run)
        return run

    async def create_thread_and_run(self, req: CreateThreadAndRunRequest, include: tuple = ()) -> tuple[dict, dict]:
        check_metadata(req.metadata)
        thread_req = req.thread or CreateThreadRequest()
        check_metadata(thread_req.metadata, "thread.metadata")

        def insert(conn):
            # The assistant is read first so a bad id leaves no thread behind.
            assistant = assistant_store.get(conn, req.assistant_id)
            thread = insert_thread(conn, thread_req, self.linker, "thread.tool_resources")
            return thread, self.insert_run(conn, thread, req, None, assistant, include)

        thread, run = await self.db.transact(insert)
        self.linker.wake_ingestion()
        self.bus.publish(run["id"], "thread.created", thread)
        self.announce(run)
        return thread, run

    @staticmethod
    def _get(conn, thread_id: str, run_id: str) -> dict:
        thread_store.get(conn, thread_id)
        return run_store.get(conn, run_id, thread_id=thread_id)

    async def get(self, thread_id: str, run_id: str) -> dict:
        return await self.db.query(lambda conn: self._get(conn, thread_id, run_id))

    async def list(self, thread_id: str, query: PageQuery) -> dict:
        def page(conn):
            thread_store.get(conn, thread_id)
            return run_store.page(conn, query, thread_id=thread_id)

        data, has_more = await self.db.query(page)
        return page_wire(data, has_more)

    async def modify(self, thread_id: str, run_id: str, req: ModifyRunRequest) -> dict:
        metadata = check_metadata(req.metadata) or {}
        for _ in range(5):
            run = await self.get(thread_id, run_id)
            updated = dict(run, metadata=metadata)
            try:
                await self.writer.commit(updated, run["status"], keep_metadata=False)
                return updated
            except StaleRun:
                continue  # the run moved on meanwhile: apply the metadata to its new state
        raise Conflict(f"Run {run_id} is changing too quickly to modify; try again.")

    async def cancel(self, thread_id: str, run_id: str) -> dict:
        for _ in range(5):
            run = await self.get(thread_id, run_id)
            status = run["status"]
            if status in TERMINAL:
                raise InvalidRequest(f"Cannot cancel run with status '{status}'.", param=None)
            if status == "cancelling":
                return run
            cancelling = dict(run, status="cancelling")
            try:
                await self.writer.commit(cancelling, status, events=[("thread.run.cancelling", cancelling)])
            except StaleRun:
                continue
            if status == "in_progress" and self.dispatcher.cancel(run_id):
                return cancelling  # the executor holding the turn ends it `cancelled`
            # Nothing is executing it here (queued, waiting for outputs): end it now.
            await end_stored_run(self.writer, run_id, "cancelling", "cancelled")
            return cancelling
        raise Conflict(f"Run {run_id} is changing too quickly to cancel; try again.")

    async def submit_tool_outputs(self, thread_id: str, run_id: str, req: SubmitToolOutputsRequest) -> dict:
        def read(conn):
            run = self._get(conn, thread_id, run_id)
            _, state = run_queries.run_with_state(conn, run_id)
            return run, state, run_queries.run_steps(conn, run_id)

        run, state, steps = await self.db.query(read)
        # The run and its steps are read by separate statements: a concurrent submission can
        # land between them, leaving a `requires_action` run with no open tool-calls step.
        step = next((s for s in reversed(steps) if s["type"] == "tool_calls" and s["status"] == "in_progress"), None)
        if run["status"] != "requires_action" or step is None:
            status = run["status"] if step is not None else (await self.get(thread_id, run_id))["status"]
            raise InvalidRequest(f'Runs in status "{status}" do not accept tool outputs.')
        expected = [c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
        outputs: dict[str, str] = {}
        for i, item in enumerate(req.tool_outputs):
            if not item.tool_call_id:
                raise InvalidRequest(
                    f"Missing required parameter: 'tool_outputs[{i}].tool_call_id'.",
                    param=f"tool_outputs[{i}].tool_call_id", code="missing_required_parameter",
                )
            outputs[item.tool_call_id] = item.output or ""
        given = [item.tool_call_id for item in req.tool_outputs]
        if sorted(set(given)) != sorted(expected) or len(given) != len(expected):
            raise InvalidRequest(f"Expected tool outputs for call_ids {expected}, got {given}", param="tool_outputs")
        now = int(time.time())
        done = dict(step, status="completed", completed_at=now, usage=state.get("pending_step_usage"))
        calls = []
        for call in step["step_details"]["tool_calls"]:
            if call["type"] == "function":  # built-in calls in the same step already hold their results
                call = dict(call, function=dict(call["function"], output=outputs.get(call["id"])))
            calls.append(call)
        done["step_details"] = {"type": "tool_calls", "tool_calls": calls}
        queued = dict(run, status="queued", required_action=None)
        state = {k: v for k, v in state.items() if k != "pending_step_usage"}
        try:
            await self.writer.commit(
                queued, "requires_action", state=state, run_columns=self.dispatcher.reservation(),
                puts=[(step_store, done)],
                events=[("thread.run.step.completed", done), ("thread.run.queued", queued)],
            )
        except StaleRun:
            current = await self.get(thread_id, run_id)
            raise InvalidRequest(f'Runs in status "{current["status"]}" do not accept tool outputs.') from None
        self.dispatcher.submit(run_id)
        return queued, tuple(state.get("include") or ())

    async def active_runs(self, thread_id: str) -> list[dict]:
        return await self.db.query(lambda conn: run_queries.active_runs(conn, thread_id))

    def abandon(self, runs: list[dict]) -> None:
        """Their thread was deleted: stop their model calls here and end their streams."""
        now = int(time.time())
        for run in runs:
            self.dispatcher.cancel(run["id"])
            gone = dict(run, status="cancelled", cancelled_at=now, required_action=None, expires_at=None)
            self.bus.publish(run["id"], "thread.run.cancelled", gone)
            self.bus.end(run["id"])

    async def list_steps(self, thread_id: str, run_id: str, query: PageQuery) -> dict:
        def page(conn):
            self._get(conn, thread_id, run_id)
            return step_store.page(conn, query, run_id=run_id)

        data, has_more = await self.db.query(page)
        return page_wire(data, has_more)

    async def get_step(self, thread_id: str, run_id: str, step_id: str) -> dict:
        def find(conn):
            self._get(conn, thread_id, run_id)
            return step_store.find(conn, step_id, run_id=run_id)

        body = await self.db.query(find)
        if body is None:
            raise NotFound.of("run step", step_id)
        return body
