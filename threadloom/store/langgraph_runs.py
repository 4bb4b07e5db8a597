"""LangGraph runs as stored: a row of `langgraph_runs`, joined with its engine run (the
built-in graph's runs are engine runs; a user graph's run keeps its own status), and the
run's LangGraph status as SQL, so lists filter and page in the database."""

from __future__ import annotations

from sqlalchemy import Connection, case, select

from threadloom.store import tables

L, R = tables.langgraph_runs, tables.runs
COLUMNS = (L.c.id, L.c.thread_id, L.c.assistant_id, L.c.engine_run_id, L.c.status, L.c.seq, L.c.body, R.c.status, R.c.body)
ROLLBACK = "rollback"  # internal: cancelled, to be deleted with its engine run once that stops

# An engine run's status, as the LangGraph run it carries shows it.
ENGINE_TO_LANGGRAPH = {
    "queued": "pending",
    "in_progress": "running",
    "cancelling": "running",
    "requires_action": "success",
    "completed": "success",
    "incomplete": "success",
    "failed": "error",
    "expired": "timeout",
    "cancelled": "interrupted",
}

# The same rule as run_rows.RunRow.status, for WHERE clauses.
STATUS = case(
    (L.c.status == ROLLBACK, "interrupted"),
    (L.c.status.is_not(None), L.c.status),
    (L.c.engine_run_id.is_(None), "pending"),
    (R.c.status.is_(None), "success"),
    else_=case(ENGINE_TO_LANGGRAPH, value=R.c.status, else_="success"),
)


def select_runs():
    return select(*COLUMNS).select_from(L.outerjoin(R, R.c.id == L.c.engine_run_id))


def fetch(conn: Connection, run_id: str, thread_id: str | None = None):
    stmt = select_runs().where(L.c.id == run_id)
    if thread_id is not None:
        stmt = stmt.where(L.c.thread_id == thread_id)
    return conn.execute(stmt).first()


def page(conn: Connection, thread_id: str, limit: int, offset: int, status: str | None) -> list:
    """A thread's runs, newest first; runs being rolled back are not shown."""
    stmt = select_runs().where(L.c.thread_id == thread_id, L.c.status.is_distinct_from(ROLLBACK))
    if status:
        stmt = stmt.where(STATUS == status)
    return conn.execute(stmt.order_by(L.c.seq.desc()).limit(limit).offset(offset)).all()


def with_status(conn: Connection, statuses: tuple[str, ...]) -> list[tuple[str, str]]:
    """(thread id, run id) of every run in these statuses."""
    return conn.execute(select(L.c.thread_id, L.c.id).select_from(L.outerjoin(R, R.c.id == L.c.engine_run_id))
                        .where(STATUS.in_(statuses))).all()
