"""LangGraph assistants over the engine's assistants table.

A LangGraph assistant is a row of `assistants` with `graph_id` set: its body is an
OpenAI assistant (so the engine runs it, and /v1 sees it) and `extra` keeps the LangGraph
object (config, context, metadata, name, version history). An assistant made through
/v1 (`asst_...`, no extra) is shown as an assistant of the `agent` graph carrying its
model and instructions.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from threadloom.domain.assistant import CreateAssistantRequest, new_assistant
from threadloom.services.langgraph import graph
from threadloom.services.langgraph.catalog import GraphCatalog
from threadloom.services.langgraph.search_pages import search_page
from threadloom.services.langgraph.errors import CONFIGURABLE_AND_CONTEXT, BadRequest, Conflict, NotFound, Unprocessable
from threadloom.services.langgraph.ids import default_assistant_id, is_uuid
from threadloom.services.langgraph.metadata import merged_metadata
from threadloom.services.langgraph.requests import (
    AssistantCount,
    AssistantCreate,
    AssistantPatch,
    AssistantSearch,
    AssistantVersions,
)
from threadloom.services.langgraph.timestamps import iso
from threadloom.store import langgraph_assistants
from threadloom.store.database import Database
from threadloom.store.projects import SHARED

_VERSION_FIELDS = ("graph_id", "config", "context", "metadata", "name", "description")


def resolve_assistant_id(value: str, graph_ids: tuple[str, ...] = graph.GRAPHS) -> str:
    """A graph id names the graph's default assistant; otherwise a UUID or an asst_ id."""
    if value in graph_ids:
        return default_assistant_id(value)
    if is_uuid(value) or value.startswith("asst_"):
        return value
    raise Unprocessable(
        f"Invalid assistant: '{value}'. Must be either:\n- A valid assistant UUID, or\n"
        f"- One of the registered graphs: {', '.join(graph_ids)}"
    )


def check_config(config: dict | None) -> dict:
    config = config or {}
    configurable = config.get("configurable")
    if configurable is not None and not isinstance(configurable, dict):
        raise Unprocessable("config.configurable must be an object")
    return config


def contained(superset, subset: dict) -> bool:
    """PostgreSQL's jsonb @> on objects, which LangGraph's metadata filters use."""
    if not isinstance(superset, dict):
        return False
    for key, value in subset.items():
        if key not in superset:
            return False
        if isinstance(value, dict) and isinstance(superset[key], dict):
            if not contained(superset[key], value):
                return False
        elif superset[key] != value:
            return False
    return True


def view(row) -> dict:
    """The LangGraph assistant object of an assistants row."""
    assistant_id, graph_id, created_at, body, extra = row
    if extra:
        return {
            "assistant_id": assistant_id,
            "graph_id": graph_id or graph.GRAPH_ID,
            "config": extra["config"],
            "context": extra["context"],
            "created_at": iso(extra["created_at"]),
            "updated_at": iso(extra["updated_at"]),
            "metadata": extra["metadata"],
            "version": extra["version"],
            "name": extra["name"],
            "description": extra.get("description"),
        }
    configurable = {"model": body["model"]}
    if body.get("instructions"):
        configurable["system_prompt"] = body["instructions"]
    return {
        "assistant_id": assistant_id,
        "graph_id": graph_id or graph.GRAPH_ID,
        "config": {"configurable": configurable},
        "context": {},
        "created_at": iso(created_at),
        "updated_at": iso(created_at),
        "metadata": dict(body.get("metadata") or {}),
        "version": 1,
        "name": body.get("name") or "Untitled",
        "description": body.get("description"),
    }


def engine_body(assistant_id: str, config: dict, context: dict, name: str, description: str | None, created: int,
                base: dict | None = None, builtin: bool = True) -> dict:
    """The OpenAI assistant the engine runs for a graph assistant (for a user graph's
    assistant, whose configuration is its graph's business, a plain one)."""
    configurable = graph.effective_configurable(config.get("configurable"), context) if builtin else {}
    settings = graph.agent_settings(configurable, base or {})
    req = CreateAssistantRequest(
        model=settings.model,
        instructions=settings.instructions if settings.instructions is not None else (base or {}).get("instructions"),
        name=(name or "")[:256] or None,
        description=(description or "")[:512] or None,
        tools=settings.tools if settings.tools is not None else (base or {}).get("tools"),
    )
    body = new_assistant(req, assistant_id)
    body["created_at"] = created
    return body


def fetch_row(conn: Connection, assistant_id: str):
    return langgraph_assistants.fetch(conn, assistant_id)


def _new_row_values(assistant_id: str, graph_id: str, config: dict, context: dict, metadata: dict, name: str,
                    description: str | None, builtin: bool = True) -> dict:
    now = time.time()
    body = engine_body(assistant_id, config, context, name, description, int(now), builtin=builtin)
    extra = {
        "config": config, "context": context, "metadata": metadata, "name": name, "description": description,
        "version": 1, "created_at": now, "updated_at": now,
    }
    extra["versions"] = [_version_entry(extra, graph_id, now)]
    return {"id": assistant_id, "created_at": int(now), "graph_id": graph_id, "body": body, "extra": extra}


def _version_entry(extra: dict, graph_id: str, at: float) -> dict:
    entry = {k: extra.get(k) for k in _VERSION_FIELDS if k != "graph_id"}
    entry.update(graph_id=graph_id, version=extra["version"], created_at=at)
    return entry


def insert_default(conn: Connection, graph_id: str, builtin: bool = True) -> None:
    values = _new_row_values(default_assistant_id(graph_id), graph_id, {}, {}, {"created_by": "system"}, graph_id, None,
                             builtin=builtin)
    # A graph's default assistant is the server's, seen by every project.
    langgraph_assistants.add(conn, {**values, "project": SHARED})


def load_for_run(conn: Connection, assistant_id: str, catalog: GraphCatalog):
    """The row a run uses; a graph's default assistant is made on first use."""
    row = fetch_row(conn, assistant_id)
    if row is None:
        for graph_id in catalog.ids:
            if assistant_id == default_assistant_id(graph_id):
                insert_default(conn, graph_id, catalog.is_builtin(graph_id))
                return fetch_row(conn, assistant_id)
    return row


class LangGraphAssistants:
    def __init__(self, db: Database, catalog: GraphCatalog):
        self.db = db
        self.catalog = catalog
        self._defaults_ready = False

    async def ensure_defaults(self) -> None:
        if self._defaults_ready:
            return

        def make(conn):
            for graph_id in self.catalog.ids:
                if fetch_row(conn, default_assistant_id(graph_id)) is None:
                    insert_default(conn, graph_id, self.catalog.is_builtin(graph_id))

        try:
            await self.db.transact(make)
        except IntegrityError:
            pass  # another process made it first
        self._defaults_ready = True

    async def create(self, req: AssistantCreate) -> dict:
        if req.graph_id not in self.catalog.ids:
            raise NotFound(f"Graph '{req.graph_id}' not found. Available graphs: {', '.join(self.catalog.ids)}")
        if req.assistant_id is not None and not is_uuid(req.assistant_id):
            raise Unprocessable("Invalid assistant ID: must be a UUID")
        config = check_config(req.config)
        if config.get("configurable") and req.context:
            raise BadRequest(CONFIGURABLE_AND_CONTEXT)
        # As LangGraph's server does, an assistant configured the older way (configurable)
        # gets the same values as its context, which graphs with a context schema read.
        context = req.context or dict(config.get("configurable") or {})
        assistant_id = req.assistant_id or str(uuid.uuid4())
        values = _new_row_values(assistant_id, req.graph_id, config, context, req.metadata or {}, req.name or "Untitled",
                                 req.description, builtin=self.catalog.is_builtin(req.graph_id))

        def put(conn):
            existing = fetch_row(conn, assistant_id)
            if existing is not None:
                if (req.if_exists or "raise") == "raise":
                    raise Conflict(f"Assistant {assistant_id} already exists")
                return view(existing)
            langgraph_assistants.add(conn, values)
            return view(fetch_row(conn, assistant_id))

        await self.ensure_defaults()
        try:
            return await self.db.transact(put)
        except IntegrityError:
            raise Conflict(f"Assistant {assistant_id} already exists") from None

    async def get(self, assistant_id: str) -> dict:
        assistant_id = resolve_assistant_id(assistant_id, self.catalog.ids)
        await self.ensure_defaults()
        row = await self.db.query(lambda conn: fetch_row(conn, assistant_id))
        if row is None:
            raise NotFound(f"Assistant {assistant_id} not found")
        return view(row)

    async def patch(self, assistant_id: str, req: AssistantPatch) -> dict:
        assistant_id = resolve_assistant_id(assistant_id, self.catalog.ids)
        if req.graph_id is not None and req.graph_id not in self.catalog.ids:
            raise NotFound(f"Graph '{req.graph_id}' not found. Available graphs: {', '.join(self.catalog.ids)}")
        if req.config is not None:
            check_config(req.config)
            if req.config.get("configurable") and req.context:
                raise BadRequest(CONFIGURABLE_AND_CONTEXT)
        await self.ensure_defaults()

        def change(conn):
            row = fetch_row(conn, assistant_id)
            if row is None:
                raise NotFound(f"Assistant {assistant_id} not found")
            current = view(row)
            extra = dict(row[4] or {})
            if not extra:
                extra = {k: current[k] for k in ("config", "context", "metadata", "name", "description")}
                extra.update(version=1, created_at=float(row[2]), versions=[])
                extra["versions"].append(_version_entry(extra, current["graph_id"], float(row[2])))
            now = time.time()
            graph_id = req.graph_id or current["graph_id"]
            if req.config is not None:
                extra["config"] = req.config
                if req.context is None and req.config.get("configurable"):
                    # The context follows a new configurable, as at creation; a config
                    # without one (a recursion limit) leaves the context as it was.
                    extra["context"] = dict(req.config["configurable"])
            if req.context is not None:
                extra["context"] = req.context
            extra["metadata"] = merged_metadata(extra.get("metadata") or {}, req.metadata)
            if req.name is not None:
                extra["name"] = req.name
            if req.description is not None:
                extra["description"] = req.description
            versions = list(extra.get("versions") or [])
            extra["version"] = max([v["version"] for v in versions] + [extra.get("version", 1)]) + 1
            extra["updated_at"] = now
            versions.append(_version_entry(extra, graph_id, now))
            extra["versions"] = versions
            body = engine_body(assistant_id, extra["config"] or {}, extra["context"] or {}, extra["name"],
                               extra.get("description"), row[2], base=None if row[4] else row[3],
                               builtin=self.catalog.is_builtin(graph_id))
            langgraph_assistants.change(conn, assistant_id, body=body, extra=extra, graph_id=graph_id)
            return view(fetch_row(conn, assistant_id))

        return await self.db.transact(change)

    async def delete(self, assistant_id: str) -> None:
        assistant_id = resolve_assistant_id(assistant_id, self.catalog.ids)

        def remove(conn):
            if not langgraph_assistants.remove(conn, assistant_id):
                raise NotFound(f"Assistant with ID {assistant_id} not found")

        await self.db.transact(remove)
        if any(assistant_id == default_assistant_id(g) for g in self.catalog.ids):
            self._defaults_ready = False

    async def _search(self, metadata, graph_id, name, sort_by="created_at", descending=True, limit=1, offset=0):
        await self.ensure_defaults()
        return await self.db.query(lambda conn: langgraph_assistants.search(
            conn, metadata=metadata, graph_id=graph_id, name=name, default_graph=graph.GRAPH_ID, sort_by=sort_by,
            descending=descending, limit=limit, offset=offset))

    async def search(self, req: AssistantSearch) -> tuple[list[dict], int, int | None]:
        """(page, total, next offset or None)."""
        rows, total = await self._search(req.metadata, req.graph_id, req.name, req.sort_by or "created_at",
                                         (req.sort_order or "desc").lower() == "desc", req.limit, req.offset)
        return search_page([view(row) for row in rows], req.select, total, req.offset, req.limit)

    async def count(self, req: AssistantCount) -> int:
        return (await self._search(req.metadata, req.graph_id, req.name))[1]

    async def graph(self, assistant_id: str, xray: bool | int = False) -> dict:
        return self.catalog.drawable((await self.get(assistant_id))["graph_id"], xray)

    async def subgraphs(self, assistant_id: str, namespace: str | None, recurse: bool) -> dict:
        return self.catalog.subgraphs((await self.get(assistant_id))["graph_id"], namespace, recurse)

    async def schemas(self, assistant_id: str) -> dict:
        return self.catalog.schemas((await self.get(assistant_id))["graph_id"])

    async def versions(self, assistant_id: str, req: AssistantVersions) -> list[dict]:
        assistant_id = resolve_assistant_id(assistant_id, self.catalog.ids)
        await self.ensure_defaults()
        row = await self.db.query(lambda conn: fetch_row(conn, assistant_id))
        if row is None:
            raise NotFound(f"Assistant {assistant_id} not found")
        current = view(row)
        entries = (row[4] or {}).get("versions") or [
            {**{k: current[k] for k in _VERSION_FIELDS}, "version": 1, "created_at": float(row[2])}]
        out = []
        for entry in sorted(entries, key=lambda e: e["version"], reverse=True):
            item = {"assistant_id": assistant_id, **{k: entry.get(k) for k in _VERSION_FIELDS},
                    "version": entry["version"], "created_at": iso(entry["created_at"])}
            if req.metadata and not contained(item["metadata"], req.metadata):
                continue
            out.append(item)
        return out[req.offset: req.offset + req.limit]

    async def set_latest(self, assistant_id: str, version: int) -> dict:
        assistant_id = resolve_assistant_id(assistant_id, self.catalog.ids)

        def change(conn):
            row = fetch_row(conn, assistant_id)
            if row is None:
                raise NotFound(f"Assistant {assistant_id} not found")
            extra = dict(row[4] or {})
            entry = next((v for v in extra.get("versions") or [] if v["version"] == version), None)
            if entry is None:
                if not extra and version == 1:
                    return view(row)
                raise NotFound(f"Version {version} not found for assistant {assistant_id}")
            for key in ("config", "context", "metadata", "name", "description"):
                extra[key] = entry.get(key)
            extra["version"] = version
            extra["updated_at"] = time.time()
            body = engine_body(assistant_id, extra["config"] or {}, extra["context"] or {}, extra["name"],
                               extra.get("description"), row[2], builtin=self.catalog.is_builtin(entry["graph_id"]))
            langgraph_assistants.change(conn, assistant_id, body=body, extra=extra, graph_id=entry["graph_id"])
            return view(fetch_row(conn, assistant_id))

        return await self.db.transact(change)
