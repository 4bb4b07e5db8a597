"""LangGraph thread searches in SQL. A thread's LangGraph metadata is in `extra` (threads
made through /v1 keep theirs in `body`). What only the thread's state tells (its status,
its values) is decided above, over the rows these return."""

from __future__ import annotations

import time

from sqlalchemy import Connection, case, func, or_, select, update

from threadloom.store import tables
from threadloom.store.json_filters import json_contains

_threads = tables.threads
COLUMNS = (_threads.c.id, _threads.c.created_at, _threads.c.updated_at, _threads.c.body, _threads.c.extra)
_FIELDS = case((_threads.c.extra.is_(None), _threads.c.body), else_=_threads.c.extra)
_SORT = {"thread_id": _threads.c.id, "created_at": _threads.c.created_at}


def _where(conn: Connection, ids: list[str] | None, metadata: dict | None) -> list:
    conditions = [json_contains(conn, _FIELDS, "metadata", metadata)]
    if ids:
        conditions.append(_threads.c.id.in_(ids))
    return conditions


def matching(conn: Connection, ids: list[str] | None, metadata: dict | None) -> list:
    """Every thread row the filters keep, oldest first."""
    return conn.execute(select(*COLUMNS).where(*_where(conn, ids, metadata)).order_by(_threads.c.seq)).all()


def search(conn: Connection, *, ids: list[str] | None, metadata: dict | None, sort_by: str, descending: bool,
           limit: int, offset: int) -> tuple[list, int]:
    """(a page of thread rows, how many match), sorted by a column of the row."""
    where = _where(conn, ids, metadata)
    total = conn.execute(select(func.count()).select_from(_threads).where(*where)).scalar()
    key = _SORT[sort_by]
    order = (key.desc(), _threads.c.seq.desc()) if descending else (key.asc(), _threads.c.seq.asc())
    return conn.execute(select(*COLUMNS).where(*where).order_by(*order).limit(limit).offset(offset)).all(), total


def lock_thread(conn: Connection, thread_id: str):
    """The thread's (body, extra), its row locked for the transaction; None when missing."""
    return conn.execute(select(_threads.c.body, _threads.c.extra).where(_threads.c.id == thread_id).with_for_update()).first()


def keep_graph_state(conn: Connection, thread_id: str, summary: dict) -> None:
    """A user graph's state as the thread object shows it (services/langgraph/graph_state.py)."""
    extra = conn.execute(select(_threads.c.extra).where(_threads.c.id == thread_id)).scalar()
    conn.execute(update(_threads).where(_threads.c.id == thread_id).values(extra=dict(extra or {}, graph_state=summary),
                                                           updated_at=int(time.time())))


def exists(conn: Connection, thread_id: str) -> bool:
    return conn.execute(select(_threads.c.id).where(_threads.c.id == thread_id)).first() is not None


def set_extra(conn: Connection, thread_id: str, extra: dict, touch: bool = False) -> None:
    """The thread's LangGraph fields (metadata, config, a graph's state)."""
    values = {"extra": extra, "updated_at": int(time.time())} if touch else {"extra": extra}
    conn.execute(update(_threads).where(_threads.c.id == thread_id).values(**values))


# -- what a built-in graph thread's state is rendered from (services/langgraph/state.py) --

M, S, R, L = tables.messages, tables.run_steps, tables.runs, tables.langgraph_runs


def rows_of(conn: Connection, thread_ids: list[str]) -> list:
    return conn.execute(select(*COLUMNS).where(_threads.c.id.in_(thread_ids))).all() if thread_ids else []


def messages_of(conn: Connection, thread_ids: list[str]):
    """(thread id, ordinal, body) of the threads' messages, in order."""
    return conn.execute(select(M.c.thread_id, M.c.ordinal, M.c.body).where(M.c.thread_id.in_(thread_ids))
                        .order_by(M.c.seq))


def steps_of(conn: Connection, thread_ids: list[str]):
    """(thread id, ordinal, body) of the threads' run steps, in order."""
    return conn.execute(select(S.c.thread_id, S.c.ordinal, S.c.body).where(S.c.thread_id.in_(thread_ids))
                        .order_by(S.c.seq))


def runs_of(conn: Connection, thread_ids: list[str]):
    """(thread id, run id, body) of the threads' engine runs."""
    return conn.execute(select(R.c.thread_id, R.c.id, R.c.body).where(R.c.thread_id.in_(thread_ids)))


def latest_runs(conn: Connection, thread_ids: list[str]):
    """(thread id, run id, status, body) of each thread's newest engine run."""
    latest = (select(R.c.thread_id, func.max(R.c.seq).label("seq")).where(R.c.thread_id.in_(thread_ids))
              .group_by(R.c.thread_id).subquery())
    return conn.execute(select(R.c.thread_id, R.c.id, R.c.status, R.c.body).join(latest, R.c.seq == latest.c.seq))


def with_runs_waiting(conn: Connection, thread_ids: list[str]) -> list[str]:
    """The threads with a LangGraph run waiting to start (a built-in one with no engine run
    yet) or a user graph's run in flight."""
    waiting = or_(L.c.status.is_(None), L.c.status.in_(("pending", "running")))
    return conn.execute(select(L.c.thread_id).where(L.c.thread_id.in_(thread_ids), L.c.engine_run_id.is_(None), waiting)
                        .distinct()).scalars().all()


def row_of(conn: Connection, thread_id: str):
    return conn.execute(select(*COLUMNS).where(_threads.c.id == thread_id)).first()


def active_engine_runs(conn: Connection, thread_id: str) -> list[str]:
    return conn.execute(select(R.c.id).where(R.c.thread_id == thread_id,
                                             R.c.status.in_(("queued", "in_progress", "cancelling")))).scalars().all()
