"""LangGraph threads' times to live: when each expires, and what happens then."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from threadloom.store import tables

_ttls = tables.thread_ttls


def set_ttl(conn: Connection, thread_id: str, strategy: str, minutes: float, now: int) -> None:
    """The thread expires `minutes` from `now` (replacing the TTL it had)."""
    conn.execute(delete(_ttls).where(_ttls.c.thread_id == thread_id))
    conn.execute(insert(_ttls), {"thread_id": thread_id, "strategy": strategy, "minutes": minutes,
                                 "expires_at": now + round(minutes * 60)})


def due(conn: Connection, now: int, limit: int = 100) -> list:
    """(thread id, project, strategy, minutes) of the threads whose TTL has run out, oldest first."""
    return conn.execute(select(_ttls.c.thread_id, _ttls.c.project, _ttls.c.strategy, _ttls.c.minutes)
                        .where(_ttls.c.expires_at <= now).order_by(_ttls.c.expires_at).limit(limit)).all()


def rearm(conn: Connection, thread_id: str, expires_at: int) -> None:
    conn.execute(update(_ttls).where(_ttls.c.thread_id == thread_id).values(expires_at=expires_at))
