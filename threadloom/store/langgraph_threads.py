"""LangGraph thread searches in SQL. A thread's LangGraph metadata is in `extra` (threads
made through /v1 keep theirs in `body`). Its status is computed here too, by the rule
services/langgraph/state.py applies to one thread, so searches filter and sort by it in
the database; what only the rendered state tells (a built-in graph thread's values, the
time of its last message) is decided above, over the rows these return."""

from __future__ import annotations

import time

from sqlalchemy import Connection, case, func, or_, select, update
from sqlalchemy import exists as sql_exists

from threadloom.store import tables
from threadloom.store.json_filters import json_contains
from threadloom.store.langgraph_engine_runs import BUSY

_threads = tables.threads
_messages, _steps, _runs, _graph_runs = tables.messages, tables.run_steps, tables.runs, tables.langgraph_runs
COLUMNS = (_threads.c.id, _threads.c.created_at, _threads.c.updated_at, _threads.c.body, _threads.c.extra)
_FIELDS = case((_threads.c.extra.is_(None), _threads.c.body), else_=_threads.c.extra)
def _status():
    """A thread's LangGraph status: busy while a run waits to start or its engine run is
    under way; else a user graph's as its last run left it (extra.graph_state); else from
    its newest engine run."""
    newest = (select(_runs.c.status).where(_runs.c.thread_id == _threads.c.id).order_by(_runs.c.seq.desc())
              .limit(1).correlate(_threads).scalar_subquery())
    waiting = sql_exists().where(
        _graph_runs.c.thread_id == _threads.c.id, _graph_runs.c.engine_run_id.is_(None),
        or_(_graph_runs.c.status.is_(None), _graph_runs.c.status.in_(("pending", "running"))),
    ).correlate(_threads)
    graph_status = _threads.c.extra["graph_state"]["status"].as_string()
    return case(
        (waiting, "busy"),
        (newest.in_(BUSY), "busy"),
        (graph_status.is_not(None), graph_status),
        (newest == "requires_action", "interrupted"),
        (newest.in_(("failed", "expired")), "error"),
        else_="idle",
    )


_SORT = {"thread_id": lambda: _threads.c.id, "created_at": lambda: _threads.c.created_at, "status": _status}


def _where(conn: Connection, ids: list[str] | None, metadata: dict | None, status: str | None = None) -> list:
    conditions = [json_contains(conn, _FIELDS, "metadata", metadata)]
    if ids:
        conditions.append(_threads.c.id.in_(ids))
    if status:
        conditions.append(_status() == status)
    return conditions


def matching(conn: Connection, ids: list[str] | None, metadata: dict | None, status: str | None = None) -> list:
    """Every thread row the filters keep, oldest first."""
    return conn.execute(select(*COLUMNS).where(*_where(conn, ids, metadata, status)).order_by(_threads.c.seq)).all()


def search(conn: Connection, *, ids: list[str] | None, metadata: dict | None, status: str | None = None, sort_by: str,
           descending: bool, limit: int, offset: int) -> tuple[list, int]:
    """(a page of thread rows, how many match), sorted by a column of the row or the status."""
    where = _where(conn, ids, metadata, status)
    total = conn.execute(select(func.count()).select_from(_threads).where(*where)).scalar()
    key = _SORT[sort_by]()
    order = (key.desc(), _threads.c.seq.desc()) if descending else (key.asc(), _threads.c.seq.asc())
    return conn.execute(select(*COLUMNS).where(*where).order_by(*order).limit(limit).offset(offset)).all(), total


def lock_thread(conn: Connection, thread_id: str):
    """The thread's (body, extra), its row locked for the transaction; None when missing."""
    return conn.execute(
        select(_threads.c.body, _threads.c.extra).where(_threads.c.id == thread_id).with_for_update()
    ).first()


def keep_graph_state(conn: Connection, thread_id: str, summary: dict) -> None:
    """A user graph's state as the thread object shows it (services/langgraph/graph_state.py)."""
    extra = conn.execute(select(_threads.c.extra).where(_threads.c.id == thread_id)).scalar()
    conn.execute(
        update(_threads)
        .where(_threads.c.id == thread_id)
        .values(extra=dict(extra or {}, graph_state=summary), updated_at=int(time.time()))
    )


def exists(conn: Connection, thread_id: str) -> bool:
    return conn.execute(select(_threads.c.id).where(_threads.c.id == thread_id)).first() is not None


def set_extra(conn: Connection, thread_id: str, extra: dict, touch: bool = False) -> None:
    """The thread's LangGraph fields (metadata, config, a graph's state)."""
    values = {"extra": extra, "updated_at": int(time.time())} if touch else {"extra": extra}
    conn.execute(update(_threads).where(_threads.c.id == thread_id).values(**values))


# -- what a built-in graph thread's state is rendered from (services/langgraph/state.py) --


def rows_of(conn: Connection, thread_ids: list[str]) -> list:
    return conn.execute(select(*COLUMNS).where(_threads.c.id.in_(thread_ids))).all() if thread_ids else []


def messages_of(conn: Connection, thread_ids: list[str]):
    """(thread id, ordinal, body) of the threads' messages, in order."""
    return conn.execute(
        select(_messages.c.thread_id, _messages.c.ordinal, _messages.c.body)
        .where(_messages.c.thread_id.in_(thread_ids))
        .order_by(_messages.c.seq)
    )


def steps_of(conn: Connection, thread_ids: list[str]):
    """(thread id, ordinal, body) of the threads' run steps, in order."""
    return conn.execute(
        select(_steps.c.thread_id, _steps.c.ordinal, _steps.c.body)
        .where(_steps.c.thread_id.in_(thread_ids))
        .order_by(_steps.c.seq)
    )


def runs_of(conn: Connection, thread_ids: list[str]):
    """(thread id, run id, body) of the threads' engine runs."""
    return conn.execute(select(_runs.c.thread_id, _runs.c.id, _runs.c.body).where(_runs.c.thread_id.in_(thread_ids)))


def latest_runs(conn: Connection, thread_ids: list[str]):
    """(thread id, run id, status, body) of each thread's newest engine run."""
    latest = (
        select(_runs.c.thread_id, func.max(_runs.c.seq).label("seq"))
        .where(_runs.c.thread_id.in_(thread_ids))
        .group_by(_runs.c.thread_id)
        .subquery()
    )
    return conn.execute(
        select(_runs.c.thread_id, _runs.c.id, _runs.c.status, _runs.c.body).join(latest, _runs.c.seq == latest.c.seq)
    )


def with_runs_waiting(conn: Connection, thread_ids: list[str]) -> list[str]:
    """The threads with a LangGraph run waiting to start (a built-in one with no engine run
    yet) or a user graph's run in flight."""
    waiting = or_(_graph_runs.c.status.is_(None), _graph_runs.c.status.in_(("pending", "running")))
    return (
        conn.execute(
            select(_graph_runs.c.thread_id)
            .where(_graph_runs.c.thread_id.in_(thread_ids), _graph_runs.c.engine_run_id.is_(None), waiting)
            .distinct()
        )
        .scalars()
        .all()
    )


def row_of(conn: Connection, thread_id: str):
    return conn.execute(select(*COLUMNS).where(_threads.c.id == thread_id)).first()


def active_engine_runs(conn: Connection, thread_id: str) -> list[str]:
    return (
        conn.execute(
            select(_runs.c.id).where(
                _runs.c.thread_id == thread_id, _runs.c.status.in_(("queued", "in_progress", "cancelling"))
            )
        )
        .scalars()
        .all()
    )
