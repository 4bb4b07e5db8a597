"""Crons as stored: a row per cron, its wire object in `body`, and `next_run_at` (epoch
seconds; NULL when it will not fire again: disabled, or past its end) for the schedulers.
Every server runs a scheduler; a firing belongs to the one whose conditional update moves
`next_run_at` on from the value it read."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy import delete as sql_delete

from threadloom.store import tables
from threadloom.store.json_filters import json_contains

_crons = tables.crons
_SORT = {
    "cron_id": _crons.c.id,
    "assistant_id": _crons.c.assistant_id,
    "thread_id": _crons.c.thread_id,
    "next_run_date": _crons.c.next_run_at,
    "end_time": _crons.c.end_at,
    "created_at": _crons.c.created_at,
    "updated_at": _crons.c.updated_at,
}


def add(conn: Connection, values: dict) -> None:
    conn.execute(insert(_crons), values)


def get(conn: Connection, cron_id: str):
    return conn.execute(
        select(_crons.c.body, _crons.c.next_run_at, _crons.c.project).where(_crons.c.id == cron_id)
    ).first()


def change(conn: Connection, cron_id: str, **values) -> None:
    conn.execute(update(_crons).where(_crons.c.id == cron_id).values(**values))


def remove(conn: Connection, cron_id: str) -> bool:
    return bool(conn.execute(sql_delete(_crons).where(_crons.c.id == cron_id)).rowcount)


def _where(conn: Connection, assistant_id, thread_id, metadata, enabled) -> list:
    conditions = [json_contains(conn, _crons.c.body, "metadata", metadata)]
    if assistant_id:
        conditions.append(_crons.c.assistant_id == assistant_id)
    if thread_id:
        conditions.append(_crons.c.thread_id == thread_id)
    if enabled is not None:
        conditions.append(_crons.c.body["enabled"].as_boolean() == enabled)
    return conditions


def search(
    conn: Connection,
    *,
    assistant_id=None,
    thread_id=None,
    metadata=None,
    enabled=None,
    sort_by="created_at",
    descending=True,
    limit=10,
    offset=0,
) -> list:
    key = _SORT[sort_by]
    order = (key.desc(), _crons.c.seq.desc()) if descending else (key.asc(), _crons.c.seq.asc())
    stmt = select(_crons.c.body, _crons.c.next_run_at).where(*_where(conn, assistant_id, thread_id, metadata, enabled))
    return conn.execute(stmt.order_by(*order).limit(limit).offset(offset)).all()


def count(conn: Connection, *, assistant_id=None, thread_id=None, metadata=None) -> int:
    where = _where(conn, assistant_id, thread_id, metadata, None)
    return conn.execute(select(func.count()).select_from(_crons).where(*where)).scalar()


def due(conn: Connection, now: int, limit: int = 100) -> list:
    """Crons whose next firing has come: (id, project, next_run_at, schedule, end_at, body)."""
    return conn.execute(
        select(_crons.c.id, _crons.c.project, _crons.c.next_run_at, _crons.c.schedule, _crons.c.end_at, _crons.c.body)
        .where(_crons.c.next_run_at.is_not(None), _crons.c.next_run_at <= now)
        .order_by(_crons.c.next_run_at)
        .limit(limit)
    ).all()


def next_due(conn: Connection) -> int | None:
    """When the next firing of any cron is (epoch seconds)."""
    return conn.execute(select(func.min(_crons.c.next_run_at))).scalar()


def claim(conn: Connection, cron_id: str, read_next: int, following: int | None) -> bool:
    """Take the firing at `read_next`: True for exactly one server."""
    taken = conn.execute(
        update(_crons).where(_crons.c.id == cron_id, _crons.c.next_run_at == read_next).values(next_run_at=following)
    )
    return bool(taken.rowcount)
