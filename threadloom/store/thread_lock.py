"""The one-active-run-per-thread rule needs the check and the write in one critical
section. SQLite already has one writer at a time; on PostgreSQL the thread row is locked."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from threadloom.domain.errors import NotFound
from threadloom.domain.run_status import ACTIVE
from threadloom.store import tables


_LOCK_THREAD = select(tables.threads.c.body).where(tables.threads.c.id == bindparam("thread_id")).with_for_update()
_ACTIVE_RUN = (
    select(tables.runs.c.id)
    .where(tables.runs.c.thread_id == bindparam("thread_id"), tables.runs.c.status.in_(ACTIVE))
    .limit(1)
)


def lock_thread(conn: Connection, thread_id: str) -> dict:
    """The thread's body, with its row locked until the transaction ends."""
    if "\x00" in thread_id:  # no id holds NUL, and PostgreSQL refuses it as a parameter
        raise NotFound.of("thread", thread_id)
    body = conn.execute(_LOCK_THREAD, {"thread_id": thread_id}).scalar()
    if body is None:
        raise NotFound.of("thread", thread_id)
    return body


def active_run_id(conn: Connection, thread_id: str) -> str | None:
    return conn.execute(_ACTIVE_RUN, {"thread_id": thread_id}).scalar()
