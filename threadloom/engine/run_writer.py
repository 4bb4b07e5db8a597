"""Writes a run's state changes: each one transaction, its events published after the
commit. The run row is updated only if its status is still the one the writer last
saw, so a cancel that lands mid-turn is never overwritten."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from threadloom import metrics
from threadloom.domain.message import text_part
from threadloom.domain.run_status import check_transition, is_terminal
from threadloom.store import runs as run_queries
from threadloom.store.database import Database
from threadloom.store.objects import ObjectStore, message_store, step_store


class EventSink(Protocol):
    """Where the engine announces what it stored (runtime/ provides the buses): the engine
    depends on this, not on runtime/."""

    def publish(self, run_id: str, name: str, data: dict | str): ...

    def end(self, run_id: str) -> None: ...

log = logging.getLogger("threadloom.runs")

# The reason an in-progress assistant message becomes incomplete, by how its run ended.
MESSAGE_REASON = {"cancelled": "run_cancelled", "expired": "run_expired", "failed": "run_failed", "incomplete": "max_tokens"}
# What an in-progress step becomes, by how its run ended.
STEP_STATUS = {"cancelled": "cancelled", "expired": "expired", "failed": "failed", "incomplete": "completed", "completed": "completed"}
_STAMP = {"cancelled": "cancelled_at", "expired": "expired_at", "failed": "failed_at", "completed": "completed_at"}


def log_run_state(run: dict) -> None:
    """One line per state change of a run; a failed run's at ERROR, so it shows at every --log-level."""
    status = run["status"]
    if is_terminal(status):
        metrics.run_finished(run, time.time() - run["created_at"])
    level = logging.ERROR if status == "failed" else logging.INFO
    if not log.isEnabledFor(level):
        return
    fields = {"run": run["id"], "thread": run["thread_id"], "model": run["model"], "status": status}
    if is_terminal(status):
        usage = run.get("usage") or {}
        fields["tokens"] = usage.get("total_tokens")
        fields["duration_s"] = int(time.time()) - run["created_at"]
        if run.get("last_error"):
            fields["last_error"] = f"{run['last_error']['code']}: {run['last_error']['message']}"
    log.log(level, "run %s %s", run["id"], status, extra={"fields": fields, "in_message": ("run", "status")})


class StaleRun(Exception):
    """The run's status changed under the writer (a cancel, an expiry)."""


def usage_wire(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class RunWriter:
    def __init__(self, db: Database, bus: EventSink):
        self.db = db
        self.bus = bus

    async def commit(
        self,
        run: dict,
        expect_status: str | None,
        *,
        state: dict | None = None,
        inserts: list[tuple[ObjectStore, dict, dict]] = (),
        puts: list[tuple[ObjectStore, dict]] = (),
        events: list[tuple[str, dict]] = (),
        run_columns: dict | None = None,
        keep_metadata: bool = True,
        durable: bool = True,
    ) -> None:
        """Write `run` (when expect_status is given, only if its stored status is that one),
        plus other objects, in one transaction; then publish `events` in order. The run keeps
        its stored metadata (a modify may have landed mid-turn) unless `keep_metadata` is
        false (the modify itself); `run` and its events are updated to carry it."""
        if expect_status is not None and expect_status != run["status"]:
            check_transition(expect_status, run["status"])

        def write(conn):
            if expect_status is not None:
                if keep_metadata:
                    # The stored body, locked: a modify may have changed its metadata since
                    # the writer read the run.
                    stored = run_queries.run_with_state(conn, run["id"], lock=True)
                    if stored is not None and stored[0].get("metadata") != run.get("metadata"):
                        run["metadata"] = stored[0]["metadata"]
                values = {"status": run["status"], "expires_at": run["expires_at"], **(run_columns or {})}
                if state is not None:
                    values["state"] = state
                if not run_queries.update_run_if_status(conn, run, expect_status, values):
                    raise StaleRun(run["id"])
            for store, body, columns in inserts:
                store.insert(conn, body, **columns)
            for store, body in puts:
                store.put(conn, body)

        await self.db.transact(write, durable=durable)
        if expect_status != run["status"] and expect_status is not None:
            log_run_state(run)
        for name, data in events:
            self.bus.publish(run["id"], name, data)
        if expect_status is not None and is_terminal(run["status"]):
            self.bus.end(run["id"])

    async def load(self, run_id: str) -> tuple[dict, dict] | None:
        return await self.db.query(lambda conn: run_queries.run_with_state(conn, run_id))


def close_message(message: dict, text: str | None, run_status: str, now: int) -> dict:
    """The final form of the assistant message a run was writing."""
    done = dict(message)
    if text is not None:
        done["content"] = [text_part(text)]
    elif not done["content"]:
        done["content"] = [text_part("")]
    if run_status == "completed":
        done.update(status="completed", completed_at=now)
    else:
        done.update(status="incomplete", incomplete_at=now, incomplete_details={"reason": MESSAGE_REASON[run_status]})
    return done


def close_step(step: dict, run_status: str, now: int, usage: dict | None = None, last_error: dict | None = None) -> dict:
    done = dict(step)
    status = STEP_STATUS[run_status]
    done["status"] = status
    done[_STAMP[status]] = now
    if usage is not None:
        done["usage"] = usage
    if status == "failed" and last_error is not None:
        done["last_error"] = {"code": last_error["code"] if last_error["code"] in ("server_error", "rate_limit_exceeded") else "server_error", "message": last_error["message"]}
    return done


def end_run_body(run: dict, state: dict, status: str, now: int, *, last_error=None, incomplete_reason=None) -> dict:
    ended = dict(run)
    ended["status"] = status
    ended["required_action"] = None
    if status != "expired":
        ended["expires_at"] = None  # an expired run keeps the moment it expired
    if status == "completed":
        ended["completed_at"] = now
    elif status == "cancelled":
        ended["cancelled_at"] = now
    elif status == "failed":
        ended["failed_at"] = now
        ended["last_error"] = last_error
    elif status == "incomplete":
        ended["incomplete_details"] = {"reason": incomplete_reason}
    ended["usage"] = usage_wire(state.get("prompt_tokens", 0), state.get("completion_tokens", 0))
    return ended


async def close_stored_parts(writer: RunWriter, run_id: str, status: str, now: int, last_error=None, skip: set = frozenset()) -> tuple[list, list]:
    """Final forms (and events) of the run's messages and steps still `in_progress` in the
    store, but those in `skip`: a message keeps the text stored so far."""
    steps, messages = await writer.db.query(lambda conn: run_queries.open_parts(conn, run_id))
    puts, events = [], []
    for message in messages:
        if message["id"] in skip:
            continue
        done = close_message(message, None, status, now)
        puts.append((message_store, done))
        events.append((f"thread.message.{done['status']}", done))
    for step in steps:
        if step["id"] in skip:
            continue
        done = close_step(step, status, now, last_error=last_error)
        puts.append((step_store, done))
        events.append((f"thread.run.step.{done['status']}", done))
    return puts, events


async def end_stored_run(writer: RunWriter, run_id: str, expect_status: str, status: str, *, last_error=None) -> dict | None:
    """End a run that no executor is holding (cancelled while waiting, expired, orphaned):
    its open steps and message take the matching final state. None if the run had moved on."""
    loaded = await writer.load(run_id)
    if loaded is None:
        return None
    run, state = loaded
    if run["status"] != expect_status:
        return None
    now = int(time.time())

    ended = end_run_body(run, state, status, now, last_error=last_error)
    puts, events = await close_stored_parts(writer, run_id, status, now, last_error)
    events.append((f"thread.run.{status}", ended))
    try:
        await writer.commit(ended, expect_status, state=state, puts=puts, events=events, run_columns={"owner": None, "lease_until": None})
    except StaleRun:
        return None
    return ended
