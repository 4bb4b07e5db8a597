"""Queries of the run engine beyond plain object reads: claiming a run, the status-guarded
update, a thread's history, a run's open parts, and what the sweeper looks for.

Hot statements are built once with bind parameters."""

from __future__ import annotations

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from threadloom.domain.run_status import ACTIVE
from threadloom.store import tables
from threadloom.store.objects import run_store

_runs, _messages, _steps = tables.runs, tables.messages, tables.run_steps

_RUN = select(_runs.c.body, _runs.c.state).where(_runs.c.id == bindparam("run_id"))
_RUN_LOCKED = _RUN.with_for_update()
# A queued run's owner is the process it is reserved for (see reserve_queued); another
# process may start it only once that reservation has lapsed.
_START = (
    update(_runs)
    .where(
        _runs.c.id == bindparam("run_id"),
        _runs.c.status == "queued",
        or_(_runs.c.owner.is_(None), _runs.c.owner == bindparam("owner"), _runs.c.lease_until < bindparam("now")),
    )
    .values(body=bindparam("body"), status="in_progress", owner=bindparam("owner"), lease_until=bindparam("lease_until"))
)
_THREAD_MESSAGES = (
    select(_messages.c.ordinal, _messages.c.body).where(_messages.c.thread_id == bindparam("thread_id")).order_by(_messages.c.seq)
)
_THREAD_STEPS = (
    select(_steps.c.ordinal, _steps.c.body).where(_steps.c.thread_id == bindparam("thread_id")).order_by(_steps.c.seq)
)
_RUN_STEPS = select(_steps.c.body).where(_steps.c.run_id == bindparam("run_id")).order_by(_steps.c.seq)
_RUN_MESSAGES = select(_messages.c.body).where(_messages.c.run_id == bindparam("run_id")).order_by(_messages.c.seq)
_ACTIVE_RUNS = select(_runs.c.body).where(_runs.c.thread_id == bindparam("thread_id"), _runs.c.status.in_(ACTIVE))


def run_with_state(conn: Connection, run_id: str, *, lock: bool = False) -> tuple[dict, dict] | None:
    """The run's body and engine state; `lock` holds its row to the end of the transaction."""
    row = conn.execute(_RUN_LOCKED if lock else _RUN, {"run_id": run_id}).first()
    return (row[0], row[1]) if row else None


def start_run(conn: Connection, run_id: str, body: dict, owner: str, now: int, lease_until: int) -> bool:
    """queued -> in_progress, held by `owner` until `lease_until`; False when the run is
    reserved for another live process."""
    params = {"run_id": run_id, "body": body, "owner": owner, "now": now, "lease_until": lease_until}
    return conn.execute(_START, params).rowcount > 0


def update_run_if_status(conn: Connection, run: dict, expect_status: str, values: dict) -> bool:
    """Write the run's body and columns only if its stored status is still `expect_status`."""
    stmt = run_store.put_statement(tuple(values), where_status=True)
    result = conn.execute(stmt, {"_id": run["id"], "_status": expect_status, "body": run, **values})
    return result.rowcount > 0


def thread_history(conn: Connection, thread_id: str) -> tuple[list, list]:
    """(ordinal, body) of the thread's messages and of its run steps, each in order."""
    params = {"thread_id": thread_id}
    return conn.execute(_THREAD_MESSAGES, params).all(), conn.execute(_THREAD_STEPS, params).all()


def run_steps(conn: Connection, run_id: str) -> list[dict]:
    return list(conn.execute(_RUN_STEPS, {"run_id": run_id}).scalars())


def run_messages(conn: Connection, run_id: str) -> list[dict]:
    return list(conn.execute(_RUN_MESSAGES, {"run_id": run_id}).scalars())


def open_parts(conn: Connection, run_id: str) -> tuple[list[dict], list[dict]]:
    """The run's steps and messages still `in_progress`."""
    steps = [b for b in run_steps(conn, run_id) if b["status"] == "in_progress"]
    messages = [b for b in run_messages(conn, run_id) if b["status"] == "in_progress"]
    return steps, messages


def active_runs(conn: Connection, thread_id: str) -> list[dict]:
    return list(conn.execute(_ACTIVE_RUNS, {"thread_id": thread_id}).scalars())


def reserve_queued(conn: Connection, owner: str, now: int, until: int, limit: int) -> list[str]:
    """Reserve for `owner` up to `limit` queued runs that no live process holds (none was
    named, or its reservation lapsed), oldest first, skipping rows another process is
    reserving right now; with the queued runs already reserved for `owner`. Their ids."""
    free = and_(_runs.c.status == "queued", or_(_runs.c.owner.is_(None), _runs.c.lease_until < now))
    pick = select(_runs.c.id).where(free).order_by(_runs.c.seq).limit(limit).with_for_update(skip_locked=True)
    taken = conn.execute(
        update(_runs).where(_runs.c.id.in_(pick.scalar_subquery()), free)
        .values(owner=owner, lease_until=until).returning(_runs.c.id)
    ).scalars().all()
    mine = conn.execute(select(_runs.c.id).where(_runs.c.status == "queued", _runs.c.owner == owner)).scalars().all()
    return list(dict.fromkeys([*taken, *mine]))


def queued_to_take(conn: Connection, owner: str, now: int) -> list[str]:
    """Queued runs free to reserve, and those reserved for `owner` (a few: a look first)."""
    stmt = select(_runs.c.id).where(
        _runs.c.status == "queued", or_(_runs.c.owner.is_(None), _runs.c.lease_until < now, _runs.c.owner == owner)
    ).limit(200)
    return list(conn.execute(stmt).scalars())


def count_queued(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(_runs).where(_runs.c.status == "queued")).scalar()


def release_queued(conn: Connection, owner: str) -> list[str]:
    """This process stops: its reserved queued runs are free for any other. Their ids."""
    stmt = (
        update(_runs).where(_runs.c.status == "queued", _runs.c.owner == owner)
        .values(owner=None, lease_until=None).returning(_runs.c.id)
    )
    return list(conn.execute(stmt).scalars())


def renew_leases(conn: Connection, owner: str, until: int) -> None:
    """The runs this process executes, and the queued runs reserved for it."""
    conn.execute(
        update(_runs).where(_runs.c.owner == owner, _runs.c.status.in_(("queued", "in_progress", "cancelling"))).values(lease_until=until)
    )


def expired_waiting_runs(conn: Connection, now: int) -> list[tuple[str, str]]:
    """(id, status) of runs waiting (queued, requires_action) past their expires_at."""
    stmt = select(_runs.c.id, _runs.c.status).where(
        _runs.c.status.in_(("queued", "requires_action")), _runs.c.expires_at <= now
    )
    return [tuple(row) for row in conn.execute(stmt)]


def orphaned_runs(conn: Connection, owner: str, now: int) -> list[tuple[str, str]]:
    """(id, status) of executing runs whose lease ran out, other than `owner`'s (a run this
    process holds is alive whatever its lease says)."""
    stmt = select(_runs.c.id, _runs.c.status).where(
        _runs.c.status.in_(("in_progress", "cancelling")),
        or_(_runs.c.lease_until.is_(None), _runs.c.lease_until < now),
        or_(_runs.c.owner.is_(None), _runs.c.owner != owner),
    )
    return [tuple(row) for row in conn.execute(stmt)]


def runs_in_status(conn: Connection, run_ids: list[str], statuses) -> list[str]:
    stmt = select(_runs.c.id).where(_runs.c.id.in_(run_ids), _runs.c.status.in_(tuple(statuses)))
    return list(conn.execute(stmt).scalars())

