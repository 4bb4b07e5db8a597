"""LangGraph runs as stored: a row of `langgraph_runs`, joined with its engine run (the
built-in graph's runs are engine runs; a user graph's run keeps its own status), and the
run's LangGraph status as SQL, so lists filter and page in the database."""

from __future__ import annotations

from sqlalchemy import Connection, and_, case, func, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert

from threadloom.store import tables

_graph_runs, _runs = tables.langgraph_runs, tables.runs
COLUMNS = (
    _graph_runs.c.id,
    _graph_runs.c.thread_id,
    _graph_runs.c.assistant_id,
    _graph_runs.c.engine_run_id,
    _graph_runs.c.status,
    _graph_runs.c.seq,
    _graph_runs.c.body,
    _runs.c.status,
    _runs.c.body,
)
ACTIVE = ("pending", "running")
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
    (_graph_runs.c.status == ROLLBACK, "interrupted"),
    (_graph_runs.c.status.is_not(None), _graph_runs.c.status),
    (_graph_runs.c.engine_run_id.is_(None), "pending"),
    (_runs.c.status.is_(None), "success"),
    else_=case(ENGINE_TO_LANGGRAPH, value=_runs.c.status, else_="success"),
)


def select_runs():
    return select(*COLUMNS).select_from(_graph_runs.outerjoin(_runs, _runs.c.id == _graph_runs.c.engine_run_id))


def fetch(conn: Connection, run_id: str, thread_id: str | None = None):
    stmt = select_runs().where(_graph_runs.c.id == run_id)
    if thread_id is not None:
        stmt = stmt.where(_graph_runs.c.thread_id == thread_id)
    return conn.execute(stmt).first()


def page(conn: Connection, thread_id: str, limit: int, offset: int, status: str | None) -> list:
    """A thread's runs, newest first; runs being rolled back are not shown."""
    stmt = select_runs().where(_graph_runs.c.thread_id == thread_id, _graph_runs.c.status.is_distinct_from(ROLLBACK))
    if status:
        stmt = stmt.where(STATUS == status)
    return conn.execute(stmt.order_by(_graph_runs.c.seq.desc()).limit(limit).offset(offset)).all()


def next_of_thread(conn: Connection, thread_id: str, after_seq: int | None):
    """The thread's first run created after the run numbered `after_seq` (None: its first
    run); runs being rolled back are skipped."""
    stmt = select_runs().where(_graph_runs.c.thread_id == thread_id, _graph_runs.c.status.is_distinct_from(ROLLBACK))
    if after_seq is not None:
        stmt = stmt.where(_graph_runs.c.seq > after_seq)
    return conn.execute(stmt.order_by(_graph_runs.c.seq).limit(1)).first()


def first_active_of_thread(conn: Connection, thread_id: str):
    """The thread's oldest pending or running run, whatever graph it runs."""
    stmt = select_runs().where(_graph_runs.c.thread_id == thread_id, STATUS.in_(ACTIVE))
    return conn.execute(stmt.order_by(_graph_runs.c.seq).limit(1)).first()


def last_seq_of_thread(conn: Connection, thread_id: str) -> int | None:
    return conn.execute(select(func.max(_graph_runs.c.seq)).where(_graph_runs.c.thread_id == thread_id)).scalar()


def with_status(conn: Connection, statuses: tuple[str, ...]) -> list[tuple[str, str]]:
    """(thread id, run id) of every run in these statuses."""
    return conn.execute(
        select(_graph_runs.c.thread_id, _graph_runs.c.id)
        .select_from(_graph_runs.outerjoin(_runs, _runs.c.id == _graph_runs.c.engine_run_id))
        .where(STATUS.in_(statuses))
    ).all()


# -- a user graph's runs (their status is their own) -------------------------------------


def insert(conn: Connection, values: dict) -> None:
    conn.execute(sql_insert(_graph_runs), values)


def active_of_thread(conn: Connection, thread_id: str) -> list:
    """(id, status) of the thread's pending and running runs, oldest first."""
    return conn.execute(
        select(_graph_runs.c.id, _graph_runs.c.status)
        .where(_graph_runs.c.thread_id == thread_id, _graph_runs.c.status.in_(ACTIVE))
        .order_by(_graph_runs.c.seq)
    ).all()


def delete_runs(conn: Connection, run_ids: list[str], status: str | None = None) -> None:
    stmt = sql_delete(_graph_runs).where(_graph_runs.c.id.in_(run_ids))
    conn.execute(stmt if status is None else stmt.where(_graph_runs.c.status == status))


def set_status(
    conn: Connection, run_ids: list[str], status: str, *, only_if: str | None = None, body: dict | None = None
) -> None:
    values = {"status": status} if body is None else {"status": status, "body": body}
    stmt = update(_graph_runs).where(_graph_runs.c.id.in_(run_ids))
    conn.execute((stmt if only_if is None else stmt.where(_graph_runs.c.status == only_if)).values(**values))


def set_body(conn: Connection, run_id: str, body: dict) -> None:
    conn.execute(update(_graph_runs).where(_graph_runs.c.id == run_id).values(body=body))


def run_ahead(conn: Connection, thread_id: str, run_id: str, seq: int) -> bool:
    """Whether a run of the thread runs, or waits ahead of this one."""
    return (
        conn.execute(
            select(_graph_runs.c.id)
            .where(
                _graph_runs.c.thread_id == thread_id,
                _graph_runs.c.id != run_id,
                (_graph_runs.c.status == "running") | and_(_graph_runs.c.status == "pending", _graph_runs.c.seq < seq),
            )
            .limit(1)
        ).first()
        is not None
    )


def stamp(conn: Connection, run_ids: list[str], now: int) -> list:
    """Mark the runs a process holds as alive; returns (id, body) of those running."""
    conn.execute(update(_graph_runs).where(_graph_runs.c.id.in_(run_ids)).values(alive_at=now))
    return conn.execute(
        select(_graph_runs.c.id, _graph_runs.c.body).where(
            _graph_runs.c.id.in_(run_ids), _graph_runs.c.status == "running"
        )
    ).all()


def stale(conn: Connection, cutoff: int, held: list[str]) -> list:
    """(id, thread id, status, project, alive_at) of active runs nobody stamped since cutoff."""
    return conn.execute(
        select(
            _graph_runs.c.id,
            _graph_runs.c.thread_id,
            _graph_runs.c.status,
            _graph_runs.c.project,
            _graph_runs.c.alive_at,
        ).where(_graph_runs.c.status.in_(ACTIVE), _graph_runs.c.alive_at < cutoff, _graph_runs.c.id.not_in(held))
    ).all()


def claim_stale(conn: Connection, run_id: str, seen_alive_at: int, **values) -> bool:
    """Take over a stale run: True for exactly one process."""
    stmt = (
        update(_graph_runs).where(_graph_runs.c.id == run_id, _graph_runs.c.alive_at == seen_alive_at).values(**values)
    )
    return bool(conn.execute(stmt).rowcount)


def graph_of_assistant(conn: Connection, assistant_id: str) -> str | None:
    return conn.execute(select(tables.assistants.c.graph_id).where(tables.assistants.c.id == assistant_id)).scalar()


def settle_waiting(conn: Connection, run_id: str, rollback: bool) -> None:
    """A built-in run that has no engine run yet: deleted (rollback) or interrupted."""
    waiting = and_(_graph_runs.c.id == run_id, _graph_runs.c.engine_run_id.is_(None))
    if rollback:
        conn.execute(sql_delete(_graph_runs).where(waiting))
    else:
        conn.execute(update(_graph_runs).where(waiting).values(status="interrupted"))
