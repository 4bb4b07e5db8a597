"""LangGraph thread searches in SQL. A thread's LangGraph metadata is in `extra` (threads
made through /v1 keep theirs in `body`). What only the thread's state tells (its status,
its values) is decided above, over the rows these return."""

from __future__ import annotations

from sqlalchemy import Connection, case, func, select

from threadloom.store import tables
from threadloom.store.json_filters import json_contains

T = tables.threads
COLUMNS = (T.c.id, T.c.created_at, T.c.updated_at, T.c.body, T.c.extra)
_FIELDS = case((T.c.extra.is_(None), T.c.body), else_=T.c.extra)
_SORT = {"thread_id": T.c.id, "created_at": T.c.created_at}


def _where(conn: Connection, ids: list[str] | None, metadata: dict | None) -> list:
    conditions = [json_contains(conn, _FIELDS, "metadata", metadata)]
    if ids:
        conditions.append(T.c.id.in_(ids))
    return conditions


def matching(conn: Connection, ids: list[str] | None, metadata: dict | None) -> list:
    """Every thread row the filters keep, oldest first."""
    return conn.execute(select(*COLUMNS).where(*_where(conn, ids, metadata)).order_by(T.c.seq)).all()


def search(conn: Connection, *, ids: list[str] | None, metadata: dict | None, sort_by: str, descending: bool,
           limit: int, offset: int) -> tuple[list, int]:
    """(a page of thread rows, how many match), sorted by a column of the row."""
    where = _where(conn, ids, metadata)
    total = conn.execute(select(func.count()).select_from(T).where(*where)).scalar()
    key = _SORT[sort_by]
    order = (key.desc(), T.c.seq.desc()) if descending else (key.asc(), T.c.seq.asc())
    return conn.execute(select(*COLUMNS).where(*where).order_by(*order).limit(limit).offset(offset)).all(), total
