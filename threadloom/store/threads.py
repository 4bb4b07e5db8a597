"""Deleting a thread, the one way both doors do it: the thread row and everything that
lives in it (messages, runs and their steps, LangGraph runs, a graph's checkpoints)."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from threadloom.store import tables

_CONTENTS = (
    tables.langgraph_runs,
    tables.run_steps,
    tables.runs,
    tables.messages,
    tables.graph_checkpoint_writes,
    tables.graph_checkpoints,
)


def delete_thread(conn: Connection, thread_id: str) -> bool:
    """False when there was no such thread (in the caller's project)."""
    deleted = conn.execute(delete(tables.threads).where(tables.threads.c.id == thread_id)).rowcount
    if not deleted:
        return False
    for table in _CONTENTS:
        conn.execute(delete(table).where(table.c.thread_id == thread_id))
    return True
