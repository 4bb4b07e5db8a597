"""LangGraph crons: a run created on a schedule, on a thread or on a new thread each time.

Schedules are cron expressions read by croniter: five fields, as LangGraph takes them, or
six with seconds last (an extension: a schedule every few seconds). `timezone` is an
IANA name (UTC by default). Every server runs a `CronScheduler`; each firing is taken by
exactly one of them (store/crons.py claims it with a conditional update) and creates the
run as POST /runs would. A firing missed while no server ran is not made up: the cron
fires next at its next time from now.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter

from threadloom.services.langgraph.assistants import resolve_assistant_id
from threadloom.services.langgraph.catalog import GraphCatalog
from threadloom.services.langgraph.errors import BadRequest, NotFound, Unprocessable
from threadloom.services.langgraph.ids import check_thread_id
from threadloom.services.langgraph.metadata import merged_metadata
from threadloom.services.langgraph.run_requests import refuse_webhook
from threadloom.services.langgraph.search_pages import selected
from threadloom.services.langgraph.requests import CronCount, CronCreate, CronPatch, CronSearch, RunCreate
from threadloom.services.langgraph.timestamps import iso
from threadloom.store import crons as cron_rows
from threadloom.store import projects
from threadloom.store.database import Database
from threadloom.store.objects import thread_store

log = logging.getLogger("threadloom.langgraph")

# What a cron's runs are made with (the rest of the request describes the cron itself).
_RUN_FIELDS = ("assistant_id", "input", "config", "context", "metadata", "webhook", "interrupt_before", "interrupt_after",
               "multitask_strategy", "stream_mode", "stream_subgraphs", "stream_resumable", "durability")


def _zone(name: str | None):
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Unprocessable(f"Invalid timezone: {name!r}") from None


def check_schedule(schedule: str) -> str:
    schedule = schedule.strip()
    if len(schedule.split()) not in (5, 6) or not croniter.is_valid(schedule):
        raise Unprocessable(f"Invalid cron schedule: {schedule!r}")
    return schedule


def next_time(schedule: str, zone_name: str | None, after: float) -> int:
    """The first firing after `after` (epoch seconds)."""
    start = datetime.fromtimestamp(after, tz=_zone(zone_name))
    try:
        return int(croniter(schedule, start).get_next(float))
    except CroniterBadCronError:
        raise Unprocessable(f"Invalid cron schedule: {schedule!r}") from None


def _following(schedule: str, zone_name: str | None, after: float, end_at: int | None) -> int | None:
    at = next_time(schedule, zone_name, after)
    return None if end_at is not None and at > end_at else at


def _tagged(config: dict | None, cron_id: str) -> dict:
    """The run config with `configurable.cron_id`, as LangGraph stores it in the payload:
    a graph can tell the runs a cron made."""
    config = dict(config or {})
    config["configurable"] = {**(config.get("configurable") or {}), "cron_id": cron_id}
    return config


def _run_request(body: dict) -> RunCreate:
    """The run a firing makes. A run may not carry both `configurable` and `context`, so
    beside a context the cron's tag is left out, as LangGraph leaves it."""
    payload = dict(body["payload"])
    if payload.get("context"):
        config = dict(payload.get("config") or {})
        config["configurable"] = {k: v for k, v in (config.get("configurable") or {}).items() if k != "cron_id"}
        payload["config"] = config
    if body["thread_id"] is None:
        payload["on_completion"] = body.get("on_run_completed") or "delete"
    return RunCreate.model_validate(payload)


def wire(body: dict, next_run_at: int | None) -> dict:
    return {**body, "next_run_date": iso(next_run_at) if next_run_at is not None else None}


class LangGraphCrons:
    def __init__(self, db: Database, catalog: GraphCatalog, assistants, wake_scheduler=lambda: None):
        self.db = db
        self.catalog = catalog
        self.assistants = assistants
        self.wake_scheduler = wake_scheduler  # a cron made or changed here may fire before it looks again

    async def create(self, thread_id: str | None, req: CronCreate) -> dict:
        schedule = check_schedule(req.schedule)
        refuse_webhook(req.webhook)
        if thread_id is not None:
            check_thread_id(thread_id)
        assistant_id = resolve_assistant_id(req.assistant_id, self.catalog.ids)
        await self.assistants.get(assistant_id)  # 404 for an unknown assistant
        zone = req.timezone
        _zone(zone)
        now = time.time()
        end_at = int(req.end_time.timestamp()) if req.end_time else None
        cron_id = str(uuid.uuid4())
        payload = {k: getattr(req, k) for k in _RUN_FIELDS if getattr(req, k) is not None}
        payload["assistant_id"] = assistant_id
        payload["config"] = _tagged(req.config, cron_id)
        body = {
            "cron_id": cron_id,
            "assistant_id": assistant_id,
            "thread_id": thread_id,
            "user_id": None,
            "schedule": schedule,
            "timezone": zone,
            "end_time": iso(end_at) if end_at is not None else None,
            "payload": payload,
            "metadata": req.metadata or {},
            "enabled": req.enabled,
            "on_run_completed": None if thread_id else (req.on_run_completed or "delete"),
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        next_at = _following(schedule, zone, now, end_at) if req.enabled else None

        def add(conn):
            if thread_id is not None and thread_store.find(conn, thread_id) is None:
                raise NotFound(f"Thread with ID {thread_id} not found")
            cron_rows.add(conn, {"id": body["cron_id"], "assistant_id": assistant_id, "thread_id": thread_id,
                                 "schedule": schedule, "next_run_at": next_at, "end_at": end_at,
                                 "created_at": int(now), "updated_at": int(now), "body": body})

        await self.db.transact(add)
        self.wake_scheduler()
        return wire(body, next_at)

    async def get(self, cron_id: str) -> dict:
        def read(conn):
            row = cron_rows.get(conn, cron_id)
            if row is None:
                raise NotFound(f"Cron with ID {cron_id} not found")
            return wire(row[0], row[1])

        return await self.db.query(read)

    async def patch(self, cron_id: str, req: CronPatch) -> dict:
        changed = req.model_fields_set
        if not changed:
            raise BadRequest("Request body cannot be empty")
        schedule = check_schedule(req.schedule) if req.schedule is not None else None
        refuse_webhook(req.webhook)
        if "timezone" in changed:
            _zone(req.timezone)

        def change(conn):
            row = cron_rows.get(conn, cron_id)
            if row is None:
                raise NotFound(f"Cron with ID {cron_id} not found")
            body = dict(row[0])
            now = time.time()
            payload = dict(body["payload"])
            for field in _RUN_FIELDS:
                if field in changed and field not in ("assistant_id", "metadata"):
                    payload[field] = getattr(req, field)
            if "metadata" in changed:
                body["metadata"] = merged_metadata(body["metadata"], req.metadata)
                payload["metadata"] = body["metadata"]
            payload["config"] = _tagged(payload.get("config"), cron_id)
            body["payload"] = {k: v for k, v in payload.items() if v is not None}
            if schedule is not None:
                body["schedule"] = schedule
            if "timezone" in changed:
                body["timezone"] = req.timezone
            if "end_time" in changed:
                body["end_time"] = iso(int(req.end_time.timestamp())) if req.end_time else None
            if req.enabled is not None:
                body["enabled"] = req.enabled
            if req.on_run_completed is not None and body["thread_id"] is None:
                body["on_run_completed"] = req.on_run_completed
            body["updated_at"] = iso(now)
            end_at = int(datetime.fromisoformat(body["end_time"]).timestamp()) if body["end_time"] else None
            next_at = _following(body["schedule"], body["timezone"], now, end_at) if body["enabled"] else None
            cron_rows.change(conn, cron_id, schedule=body["schedule"], end_at=end_at, next_run_at=next_at,
                             updated_at=int(now), body=body)
            return wire(body, next_at)

        changed_cron = await self.db.transact(change)
        self.wake_scheduler()
        return changed_cron

    async def delete(self, cron_id: str) -> None:
        if not await self.db.transact(lambda conn: cron_rows.remove(conn, cron_id)):
            raise NotFound(f"Cron with ID {cron_id} not found")

    async def search(self, req: CronSearch) -> list[dict]:
        assistant_id = resolve_assistant_id(req.assistant_id, self.catalog.ids) if req.assistant_id else None
        rows = await self.db.query(lambda conn: cron_rows.search(
            conn, assistant_id=assistant_id, thread_id=req.thread_id, metadata=req.metadata, enabled=req.enabled,
            sort_by=req.sort_by or "created_at", descending=(req.sort_order or "desc").lower() == "desc",
            limit=req.limit, offset=req.offset))
        return selected([wire(body, next_at) for body, next_at in rows], req.select)

    async def count(self, req: CronCount) -> int:
        assistant_id = resolve_assistant_id(req.assistant_id, self.catalog.ids) if req.assistant_id else None
        return await self.db.query(lambda conn: cron_rows.count(
            conn, assistant_id=assistant_id, thread_id=req.thread_id, metadata=req.metadata))


class CronScheduler:
    """Fires due crons; runs in every server (each firing is claimed by one). It sleeps
    until the next firing it knows of, at most LOOK_SECONDS: a cron made on another server
    is seen that late at worst; one made here wakes it."""

    LOOK_SECONDS = 5.0

    def __init__(self, db: Database, create_run):
        self.db = db
        self.create_run = create_run  # LangGraphDoor.create_run
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def run_forever(self) -> None:
        while True:
            wait = self.LOOK_SECONDS
            try:
                await self.fire_due()
                next_at = await self.db.query(cron_rows.next_due)
                if next_at is not None:
                    wait = min(wait, max(0.05, next_at - time.time()))
            except Exception as exc:  # the database is away: the next look tries again
                log.warning("could not look for due crons: %s", exc)
            try:
                await asyncio.wait_for(self._woken.wait(), wait)
            except TimeoutError:
                pass
            self._woken.clear()

    async def fire_due(self) -> int:
        now = time.time()
        fired = 0
        for cron_id, project, read_next, schedule, end_at, body in await self.db.query(
                lambda conn: cron_rows.due(conn, int(now))):
            following = _following(schedule, body.get("timezone"), max(now, read_next), end_at)
            if not await self.db.transact(lambda conn: cron_rows.claim(conn, cron_id, read_next, following)):
                continue  # another server took this firing
            fired += 1
            await self._fire(cron_id, project, body)
        return fired

    async def _fire(self, cron_id: str, project: str, body: dict) -> None:
        token = projects.current_project.set(project)  # the run belongs to the cron's project
        try:
            run = await self.create_run(body["thread_id"], _run_request(body))
            log.info("cron %s fired: run %s on thread %s", cron_id, run["run_id"], run["thread_id"])
        except Exception as exc:  # its thread or assistant is gone, or its run refused: the next firing tries again
            log.warning("cron %s could not fire: %s", cron_id, getattr(exc, "message", None) or exc)
        finally:
            projects.current_project.reset(token)
