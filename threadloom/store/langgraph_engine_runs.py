"""The built-in graph's LangGraph runs over their engine runs: what its per-thread queue
(services/langgraph/engine_runs.py) reads and writes. A LangGraph run here has no status
of its own while it waits or runs (its engine run's is read), `engine_run_id` NULL until
it starts, and ROLLBACK while what its engine run wrote waits to be deleted."""

from __future__ import annotations

from sqlalchemy import Connection, and_, bindparam, delete, or_, select, update

from threadloom.domain.run_status import ACTIVE
from threadloom.store import tables
from threadloom.store.langgraph_runs import ROLLBACK, select_runs

_graph_runs, _runs, _steps, _messages = tables.langgraph_runs, tables.runs, tables.run_steps, tables.messages
BUSY = ("queued", "in_progress", "cancelling")
_ACTIVE_ENGINE_RUN = select(_runs.c.id, _runs.c.status, _runs.c.body).where(_runs.c.thread_id == bindparam("_thread"),
                                                               _runs.c.status.in_(ACTIVE)).limit(1)
_WAITING = and_(_graph_runs.c.engine_run_id.is_(None), _graph_runs.c.status.is_(None))


def active_engine_run(conn: Connection, thread_id: str):
    """(id, status, body) of the thread's engine run that is not done, if any."""
    return conn.execute(_ACTIVE_ENGINE_RUN, {"_thread": thread_id}).first()


def waiting_run_ids(conn: Connection, thread_id: str) -> list[str]:
    return conn.execute(select(_graph_runs.c.id).where(_graph_runs.c.thread_id == thread_id, _WAITING)).scalars().all()


def oldest_waiting(conn: Connection, thread_id: str):
    return conn.execute(
        select_runs().where(_graph_runs.c.thread_id == thread_id, _WAITING).order_by(_graph_runs.c.seq).limit(1)
    ).first()


def threads_with_waiting_runs(conn: Connection, only_idle: bool) -> list[str]:
    """Threads with runs to start or rollbacks to finish; `only_idle`: whose engine run is
    neither queued nor executing."""
    stmt = select(_graph_runs.c.thread_id).where(or_(_WAITING, _graph_runs.c.status == ROLLBACK))
    if only_idle:
        stmt = stmt.where(_graph_runs.c.thread_id.not_in(select(_runs.c.thread_id).where(_runs.c.status.in_(BUSY))))
    return conn.execute(stmt.distinct()).scalars().all()


def latest_engine_status(conn: Connection, thread_id: str) -> str | None:
    return conn.execute(
        select(_runs.c.status).where(_runs.c.thread_id == thread_id).order_by(_runs.c.seq.desc()).limit(1)
    ).scalar()


def engine_status(conn: Connection, engine_run_id: str) -> str | None:
    return conn.execute(select(_runs.c.status).where(_runs.c.id == engine_run_id)).scalar()


def step_bodies_newest_first(conn: Connection, engine_run_id: str):
    return conn.execute(
        select(_steps.c.body).where(_steps.c.run_id == engine_run_id).order_by(_steps.c.seq.desc())
    ).scalars()


def runs_of_engine_run(conn: Connection, engine_run_id: str) -> list:
    """(id, body) of the LangGraph runs an engine run carries that are not settled."""
    return conn.execute(
        select(_graph_runs.c.id, _graph_runs.c.body).where(
            _graph_runs.c.engine_run_id == engine_run_id, _graph_runs.c.status.is_(None)
        )
    ).all()


def settle_runs_of_engine_run(conn: Connection, engine_run_id: str, status: str) -> None:
    conn.execute(
        update(_graph_runs)
        .where(_graph_runs.c.engine_run_id == engine_run_id, _graph_runs.c.status.is_(None))
        .values(status=status)
    )


def start(conn: Connection, run_id: str, engine_run_id: str, body: dict) -> None:
    """The LangGraph run is carried by this engine run from now on."""
    conn.execute(update(_graph_runs).where(_graph_runs.c.id == run_id).values(engine_run_id=engine_run_id, body=body))


def rolled_back_engine_runs(conn: Connection, thread_id: str) -> list[str]:
    return (
        conn.execute(
            select(_graph_runs.c.engine_run_id)
            .where(_graph_runs.c.thread_id == thread_id, _graph_runs.c.status == ROLLBACK)
            .distinct()
        )
        .scalars()
        .all()
    )


def forget_engine_run(conn: Connection, engine_run_id: str) -> None:
    """A rolled-back engine run, what it wrote, and the LangGraph runs rolled back with it."""
    for table in (_messages, _steps):
        conn.execute(delete(table).where(table.c.run_id == engine_run_id))
    conn.execute(delete(_runs).where(_runs.c.id == engine_run_id))
    conn.execute(
        delete(_graph_runs).where(_graph_runs.c.engine_run_id == engine_run_id, _graph_runs.c.status == ROLLBACK)
    )


def assistant_body(conn: Connection, assistant_id: str) -> dict | None:
    return conn.execute(select(tables.assistants.c.body).where(tables.assistants.c.id == assistant_id)).scalar()
