"""The built-in graph's LangGraph runs over their engine runs: what its per-thread queue
(services/langgraph/engine_runs.py) reads and writes. A LangGraph run here has no status
of its own while it waits or runs (its engine run's is read), `engine_run_id` NULL until
it starts, and ROLLBACK while what its engine run wrote waits to be deleted."""

from __future__ import annotations

from sqlalchemy import Connection, and_, bindparam, delete, or_, select, update

from threadloom.domain.run_status import ACTIVE
from threadloom.store import tables
from threadloom.store.langgraph_runs import ROLLBACK, select_runs

L, R, S, M = tables.langgraph_runs, tables.runs, tables.run_steps, tables.messages
BUSY = ("queued", "in_progress", "cancelling")
_ACTIVE_ENGINE_RUN = select(R.c.id, R.c.status, R.c.body).where(R.c.thread_id == bindparam("_thread"),
                                                               R.c.status.in_(ACTIVE)).limit(1)
_WAITING = and_(L.c.engine_run_id.is_(None), L.c.status.is_(None))


def active_engine_run(conn: Connection, thread_id: str):
    """(id, status, body) of the thread's engine run that is not done, if any."""
    return conn.execute(_ACTIVE_ENGINE_RUN, {"_thread": thread_id}).first()


def waiting_run_ids(conn: Connection, thread_id: str) -> list[str]:
    return conn.execute(select(L.c.id).where(L.c.thread_id == thread_id, _WAITING)).scalars().all()


def oldest_waiting(conn: Connection, thread_id: str):
    return conn.execute(select_runs().where(L.c.thread_id == thread_id, _WAITING).order_by(L.c.seq).limit(1)).first()


def threads_with_waiting_runs(conn: Connection, only_idle: bool) -> list[str]:
    """Threads with runs to start or rollbacks to finish; `only_idle`: whose engine run is
    neither queued nor executing."""
    stmt = select(L.c.thread_id).where(or_(_WAITING, L.c.status == ROLLBACK))
    if only_idle:
        stmt = stmt.where(L.c.thread_id.not_in(select(R.c.thread_id).where(R.c.status.in_(BUSY))))
    return conn.execute(stmt.distinct()).scalars().all()


def latest_engine_status(conn: Connection, thread_id: str) -> str | None:
    return conn.execute(select(R.c.status).where(R.c.thread_id == thread_id).order_by(R.c.seq.desc()).limit(1)).scalar()


def engine_status(conn: Connection, engine_run_id: str) -> str | None:
    return conn.execute(select(R.c.status).where(R.c.id == engine_run_id)).scalar()


def step_bodies_newest_first(conn: Connection, engine_run_id: str):
    return conn.execute(select(S.c.body).where(S.c.run_id == engine_run_id).order_by(S.c.seq.desc())).scalars()


def runs_of_engine_run(conn: Connection, engine_run_id: str) -> list:
    """(id, body) of the LangGraph runs an engine run carries that are not settled."""
    return conn.execute(select(L.c.id, L.c.body).where(L.c.engine_run_id == engine_run_id, L.c.status.is_(None))).all()


def settle_runs_of_engine_run(conn: Connection, engine_run_id: str, status: str) -> None:
    conn.execute(update(L).where(L.c.engine_run_id == engine_run_id, L.c.status.is_(None)).values(status=status))


def start(conn: Connection, run_id: str, engine_run_id: str, body: dict) -> None:
    """The LangGraph run is carried by this engine run from now on."""
    conn.execute(update(L).where(L.c.id == run_id).values(engine_run_id=engine_run_id, body=body))


def rolled_back_engine_runs(conn: Connection, thread_id: str) -> list[str]:
    return conn.execute(select(L.c.engine_run_id).where(L.c.thread_id == thread_id, L.c.status == ROLLBACK)
                        .distinct()).scalars().all()


def forget_engine_run(conn: Connection, engine_run_id: str) -> None:
    """A rolled-back engine run, what it wrote, and the LangGraph runs rolled back with it."""
    for table in (M, S):
        conn.execute(delete(table).where(table.c.run_id == engine_run_id))
    conn.execute(delete(R).where(R.c.id == engine_run_id))
    conn.execute(delete(L).where(L.c.engine_run_id == engine_run_id, L.c.status == ROLLBACK))


def assistant_body(conn: Connection, assistant_id: str) -> dict | None:
    return conn.execute(select(tables.assistants.c.body).where(tables.assistants.c.id == assistant_id)).scalar()
