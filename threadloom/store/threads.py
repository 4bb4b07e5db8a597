"""Deleting a thread, the one way both doors do it: the thread row and everything that
lives in it (messages, runs and their steps, LangGraph runs, a graph's checkpoints, the
crons that run on it, its time to live)."""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, func, insert, select, tuple_

from threadloom.domain.ids import new_id
from threadloom.store import tables

_CONTENTS = (
    tables.langgraph_runs,
    tables.run_steps,
    tables.runs,
    tables.messages,
    tables.graph_checkpoint_writes,
    tables.graph_checkpoints,
    tables.crons,
    tables.thread_ttls,
)


def delete_thread(conn: Connection, thread_id: str) -> bool:
    """False when there was no such thread (in the caller's project)."""
    deleted = conn.execute(delete(tables.threads).where(tables.threads.c.id == thread_id)).rowcount
    if not deleted:
        return False
    for table in _CONTENTS:
        conn.execute(delete(table).where(table.c.thread_id == thread_id))
    return True


def copy_checkpoints(conn: Connection, source: str, target: str) -> None:
    """A user graph thread's checkpoints and pending writes, as the copy's own."""
    for table in (tables.graph_checkpoints, tables.graph_checkpoint_writes):
        columns = [c for c in table.c if c.name not in ("seq", "thread_id")]
        rows = conn.execute(select(*columns).where(table.c.thread_id == source).order_by(table.c.seq)).mappings().all()
        if rows:
            conn.execute(insert(table), [dict(row, thread_id=target) for row in rows])


def delete_run_checkpoints(conn: Connection, thread_id: str, run_id: str) -> None:
    """What a rolled-back run of a user graph wrote: the checkpoints whose metadata names
    it, and their pending writes."""
    checkpoints = tables.graph_checkpoints
    written = conn.execute(
        select(checkpoints.c.checkpoint_id).where(checkpoints.c.thread_id == thread_id,
                                                  checkpoints.c.metadata["run_id"].as_string() == run_id)
    ).scalars().all()
    if written:
        for table in (tables.graph_checkpoint_writes, checkpoints):
            conn.execute(delete(table).where(table.c.thread_id == thread_id, table.c.checkpoint_id.in_(written)))


def keep_latest_checkpoints(conn: Connection, thread_id: str) -> None:
    """A user graph thread pruned to its latest checkpoint in each namespace (the graph's
    and each subgraph's), with that checkpoint's pending writes; the rest deleted."""
    checkpoints, writes = tables.graph_checkpoints, tables.graph_checkpoint_writes
    latest = (select(checkpoints.c.checkpoint_ns, func.max(checkpoints.c.checkpoint_id))
              .where(checkpoints.c.thread_id == thread_id).group_by(checkpoints.c.checkpoint_ns))
    kept = [tuple(row) for row in conn.execute(latest)]
    if not kept:
        return
    for table in (writes, checkpoints):
        older = and_(table.c.thread_id == thread_id, tuple_(table.c.checkpoint_ns, table.c.checkpoint_id).not_in(kept))
        conn.execute(delete(table).where(older))


def copy_contents(conn: Connection, source: str, target: str) -> None:
    """A thread's messages and run steps, as the copy's own (new ids, in the same order)."""
    for table, prefix in ((tables.messages, "msg_"), (tables.run_steps, "step_")):
        rows = conn.execute(select(table).where(table.c.thread_id == source).order_by(table.c.seq)).mappings().all()
        copies = []
        for row in rows:
            copy_id = new_id(prefix)
            values = {k: v for k, v in row.items() if k != "seq"}
            values.update(id=copy_id, thread_id=target, body=dict(row["body"], id=copy_id, thread_id=target))
            copies.append(values)
        if copies:
            conn.execute(insert(table), copies)
