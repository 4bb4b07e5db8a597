"""A thread as LangGraph sees it, read from the store: its messages, its status
(idle / busy / interrupted / error), the interrupt it waits on, and checkpoints.

Nothing here is written per event: the state is rendered from the messages and steps the
engine stores anyway. Checkpoints are synthesized, one per message, with ids derived from
their content so the same state always has the same checkpoint id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from threadloom.services.langgraph import graph
from threadloom.services.langgraph.ids import derived_id
from threadloom.services.langgraph.messages import Rendered, render
from threadloom.services.langgraph.timestamps import iso
from threadloom.store import langgraph_engine_runs, langgraph_threads

BUSY_ENGINE = langgraph_engine_runs.BUSY


@dataclass
class ThreadRow:
    id: str
    created_at: int
    updated_at: int
    body: dict
    extra: dict | None

    @property
    def metadata(self) -> dict:
        if self.extra and "metadata" in self.extra:
            return self.extra["metadata"]
        return dict(self.body.get("metadata") or {})

    @property
    def config(self) -> dict:
        return (self.extra or {}).get("config") or {}

    @property
    def graph_state(self) -> dict | None:
        """A user graph's state as of its last run (graph_state.thread_summary)."""
        return (self.extra or {}).get("graph_state")


@dataclass
class Contents:
    messages: list[tuple[int, dict]] = field(default_factory=list)
    steps: list[tuple[int, dict]] = field(default_factory=list)
    latest_run: tuple[str, str, dict] | None = None  # id, status, body
    pending_langgraph: bool = False
    # What the AI messages' usage_metadata and response_metadata say.
    usage: dict[str, dict] = field(default_factory=dict)  # message or tool step id -> step usage
    models: dict[str, str] = field(default_factory=dict)  # run id -> model


def interrupt_of(step_id: str, calls: list[dict]) -> dict:
    """The interrupt a run stops at when the model calls tools: its value lists the calls."""
    return {"value": {"tool_calls": calls}, "id": derived_id("interrupt", step_id).replace("-", "")}


def task_id_of(step_id: str) -> str:
    return derived_id("task", step_id)


@dataclass
class Snapshot:
    thread: ThreadRow
    rendered: Rendered
    status: str
    latest_run: tuple[str, str, dict] | None

    @property
    def values(self) -> dict:
        if self.thread.graph_state is not None:
            return self.thread.graph_state["values"]
        return {"messages": self.rendered.messages} if self.rendered.messages else {}

    @property
    def interrupt(self) -> dict | None:
        if self.status != "interrupted" or not self.rendered.pending_step_id:
            return None
        return interrupt_of(self.rendered.pending_step_id, self.rendered.pending_calls)

    @property
    def error(self) -> dict | None:
        if self.thread.graph_state is not None:
            return self.thread.graph_state.get("error") if self.status == "error" else None
        if self.status != "error" or self.latest_run is None:
            return None
        body = self.latest_run[2]
        if body["status"] == "expired":
            return {"error": "TimeoutError", "message": "The run expired before it finished."}
        last = body.get("last_error") or {}
        return {"error": last.get("code") or "Error", "message": last.get("message") or ""}

    @property
    def updated_at(self) -> int:
        latest = max(self.rendered.times) if self.rendered.times else 0
        return max(self.thread.updated_at, latest)


def thread_status(contents: Contents) -> str:
    if contents.pending_langgraph:
        return "busy"
    if contents.latest_run is None:
        return "idle"
    status = contents.latest_run[1]
    if status in BUSY_ENGINE:
        return "busy"
    if status == "requires_action":
        return "interrupted"
    if status in ("failed", "expired"):
        return "error"
    return "idle"


def load_threads(conn: Connection, thread_ids: list[str]) -> dict[str, ThreadRow]:
    return {r[0]: ThreadRow(*r) for r in langgraph_threads.rows_of(conn, thread_ids)}


def load_contents(conn: Connection, thread_ids: list[str]) -> dict[str, Contents]:
    out = {tid: Contents() for tid in thread_ids}
    if not thread_ids:
        return out
    for tid, ordinal, body in langgraph_threads.messages_of(conn, thread_ids):
        out[tid].messages.append((ordinal, body))
    for tid, ordinal, body in langgraph_threads.steps_of(conn, thread_ids):
        if body["type"] == "tool_calls":
            out[tid].steps.append((ordinal, body))
            if body.get("usage"):
                out[tid].usage[body["id"]] = body["usage"]
        elif body.get("usage"):
            out[tid].usage[body["step_details"]["message_creation"]["message_id"]] = body["usage"]
    for tid, run_id, body in langgraph_threads.runs_of(conn, thread_ids):
        out[tid].models[run_id] = body["model"]
    for tid, run_id, status, body in langgraph_threads.latest_runs(conn, thread_ids):
        out[tid].latest_run = (run_id, status, body)
    for tid in langgraph_threads.with_runs_waiting(conn, thread_ids):
        out[tid].pending_langgraph = True
    return out


def snapshot_of(thread: ThreadRow, contents: Contents) -> Snapshot:
    status = thread_status(contents)
    if thread.graph_state is not None and status != "busy":
        status = thread.graph_state["status"]
    waiting = contents.latest_run[0] if contents.latest_run and contents.latest_run[1] == "requires_action" else None
    rendered = render(contents.messages, contents.steps, waiting_run_id=waiting, usage=contents.usage, models=contents.models)
    return Snapshot(thread, rendered, status, contents.latest_run)


def load_snapshots(conn: Connection, thread_ids: list[str]) -> dict[str, Snapshot]:
    threads = load_threads(conn, thread_ids)
    contents = load_contents(conn, list(threads))
    return {tid: snapshot_of(threads[tid], contents[tid]) for tid in threads}


def thread_wire(snapshot: Snapshot) -> dict:
    interrupt = snapshot.interrupt
    thread = snapshot.thread
    return {
        "thread_id": thread.id,
        "created_at": iso(thread.created_at),
        "updated_at": iso(snapshot.updated_at),
        "state_updated_at": iso(snapshot.updated_at),
        "metadata": thread.metadata,
        "status": snapshot.status,
        "config": thread.config,
        "values": snapshot.values,
        "interrupts": _interrupts(snapshot, interrupt),
        "error": snapshot.error,
    }


def _interrupts(snapshot: Snapshot, interrupt: dict | None) -> dict:
    if snapshot.thread.graph_state is not None:
        return snapshot.thread.graph_state["interrupts"] if snapshot.status == "interrupted" else {}
    return {task_id_of(snapshot.rendered.pending_step_id): [interrupt]} if interrupt else {}


# -- checkpoints -------------------------------------------------------------------------


def _checkpoint(thread_id: str, messages: list[dict], k: int) -> dict | None:
    if k <= 0:
        return None
    return {
        "thread_id": thread_id,
        "checkpoint_ns": "",
        "checkpoint_id": derived_id("checkpoint", thread_id, str(k), messages[k - 1]["id"] or ""),
        "checkpoint_map": None,
    }


def _next_of(message: dict) -> list[str]:
    if message["type"] in ("human", "tool"):
        return [graph.AGENT_NODE]
    if message["type"] == "ai" and message.get("tool_calls"):
        return [graph.TOOLS_NODE]
    return []


def thread_states(snapshot: Snapshot) -> list[dict]:
    """Every checkpoint of the thread, newest first (LangGraph's ThreadState objects)."""
    thread_id = snapshot.thread.id
    messages = snapshot.rendered.messages
    times = snapshot.rendered.times
    interrupt = snapshot.interrupt
    states = []
    for k in range(len(messages), 0, -1):
        last = messages[k - 1]
        checkpoint = _checkpoint(thread_id, messages, k)
        parent = _checkpoint(thread_id, messages, k - 1)
        newest = k == len(messages)
        tasks: list[dict] = []
        interrupts: list[dict] = []
        next_nodes = _next_of(last)
        if newest and interrupt is not None:
            interrupts = [interrupt]
            tasks = [{"id": task_id_of(snapshot.rendered.pending_step_id), "name": graph.TOOLS_NODE,
                      "path": ["__pregel_pull", graph.TOOLS_NODE], "error": None, "interrupts": interrupts,
                      "checkpoint": None, "state": None, "result": None}]
        elif newest and snapshot.status != "busy" and next_nodes == [graph.AGENT_NODE]:
            next_nodes = []  # nothing runs until the next run
        if next_nodes and not tasks:
            tasks = [{"id": derived_id("task", checkpoint["checkpoint_id"]), "name": next_nodes[0],
                      "path": ["__pregel_pull", next_nodes[0]], "error": None, "interrupts": [],
                      "checkpoint": None, "state": None, "result": None}]
        states.append({
            "values": {"messages": messages[:k]},
            "next": next_nodes,
            "tasks": tasks,
            "metadata": {
                "source": "input" if last["type"] == "human" else "loop",
                "step": k - 1,
                "parents": {},
                "graph_id": snapshot.thread.metadata.get("graph_id", graph.GRAPH_ID),
                "thread_id": thread_id,
            },
            "created_at": iso(times[k - 1]),
            "checkpoint": checkpoint,
            "parent_checkpoint": parent,
            "interrupts": interrupts,
            "checkpoint_id": checkpoint["checkpoint_id"],
            "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
        })
    return states


EMPTY_STATE = {
    "values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None, "checkpoint": None,
    "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None,
}
