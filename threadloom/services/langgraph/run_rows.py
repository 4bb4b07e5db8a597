"""A LangGraph run as stored: its row in `langgraph_runs` joined with its engine run (the
built-in graph's runs are engine runs; a user graph's run keeps its own status), and its
wire object."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from threadloom.services.langgraph.timestamps import iso
from threadloom.store import langgraph_runs
from threadloom.store.langgraph_runs import ENGINE_TO_LANGGRAPH, ROLLBACK

ACTIVE_STATUSES = langgraph_runs.ACTIVE


@dataclass
class RunRow:
    id: str
    thread_id: str
    assistant_id: str
    engine_run_id: str | None
    stored_status: str | None
    seq: int
    body: dict
    engine_status: str | None
    engine_body: dict | None

    @property
    def door(self) -> dict:
        return self.body["_door"]

    @property
    def status(self) -> str:
        if self.stored_status:
            return "interrupted" if self.stored_status == ROLLBACK else self.stored_status
        if self.engine_run_id is None:
            return "pending"
        if self.engine_status is None:
            return "success"  # its engine run was deleted (its thread was rolled back over)
        return ENGINE_TO_LANGGRAPH[self.engine_status]

    def wire(self) -> dict:
        updated = self.body["updated_at"]
        if self.engine_body and not self.stored_status:
            stamps = [self.engine_body.get(k) for k in ("started_at", "completed_at", "cancelled_at", "failed_at")]
            stamps = [s for s in stamps if s]
            if stamps:
                updated = max(updated, iso(max(stamps)))
        return {
            "run_id": self.id,
            "thread_id": self.thread_id,
            "assistant_id": self.assistant_id,
            "created_at": self.body["created_at"],
            "updated_at": updated,
            "status": self.status,
            "metadata": self.body["metadata"],
            "kwargs": self.body["kwargs"],
            "multitask_strategy": self.body["multitask_strategy"],
        }


def fetch_run(conn: Connection, run_id: str, thread_id: str | None = None) -> RunRow | None:
    row = langgraph_runs.fetch(conn, run_id, thread_id)
    return RunRow(*row) if row else None
