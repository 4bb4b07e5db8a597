"""LangGraph assistant searches in SQL: an assistants row is a LangGraph assistant when
`extra` holds its LangGraph fields, or an assistant made through /v1 (its name and
metadata in `body`), both filtered, sorted and paged here."""

from __future__ import annotations

from sqlalchemy import Connection, Float, bindparam, case, cast, delete, func, insert, select, update

from threadloom.store import tables
from threadloom.store.json_filters import json_contains

_assistants = tables.assistants
COLUMNS = (_assistants.c.id, _assistants.c.graph_id, _assistants.c.created_at, _assistants.c.body, _assistants.c.extra)
_FIELDS = case(
    (_assistants.c.extra.is_(None), _assistants.c.body), else_=_assistants.c.extra
)  # where name and metadata live
_NAME = func.coalesce(
    case(
        (_assistants.c.extra.is_(None), _assistants.c.body["name"].as_string()),
        else_=_assistants.c.extra["name"].as_string(),
    ),
    "Untitled",
)
_SORT = {
    "assistant_id": _assistants.c.id,
    "graph_id": func.lower(func.coalesce(_assistants.c.graph_id, "agent")),
    "name": func.lower(_NAME),
    "created_at": _assistants.c.created_at,
    "updated_at": func.coalesce(cast(_assistants.c.extra["updated_at"].as_string(), Float), _assistants.c.created_at),
}


def _where(conn: Connection, metadata: dict | None, graph_id: str | None, name: str | None, default_graph: str):
    conditions = [json_contains(conn, _FIELDS, "metadata", metadata)]
    if graph_id:
        conditions.append(func.coalesce(_assistants.c.graph_id, default_graph) == graph_id)
    if name:
        conditions.append(func.lower(_NAME).contains(name.lower(), autoescape=True))
    return conditions


def search(
    conn: Connection,
    *,
    metadata: dict | None,
    graph_id: str | None,
    name: str | None,
    default_graph: str,
    sort_by: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list, int]:
    """(a page of rows, how many match)."""
    where = _where(conn, metadata, graph_id, name, default_graph)
    total = conn.execute(select(func.count()).select_from(_assistants).where(*where)).scalar()
    key = _SORT[sort_by]
    order = (key.desc(), _assistants.c.seq.desc()) if descending else (key.asc(), _assistants.c.seq.asc())
    rows = conn.execute(select(*COLUMNS).where(*where).order_by(*order).limit(limit).offset(offset)).all()
    return rows, total


_FETCH = select(*COLUMNS).where(_assistants.c.id == bindparam("_id"))


def fetch(conn: Connection, assistant_id: str):
    return conn.execute(_FETCH, {"_id": assistant_id}).first()


def add(conn: Connection, values: dict) -> None:
    conn.execute(insert(_assistants), values)


def change(conn: Connection, assistant_id: str, **values) -> None:
    conn.execute(update(_assistants).where(_assistants.c.id == assistant_id).values(**values))


def remove(conn: Connection, assistant_id: str) -> bool:
    """The assistant and the crons that run it (as LangGraph deletes them)."""
    removed = bool(conn.execute(delete(_assistants).where(_assistants.c.id == assistant_id)).rowcount)
    if removed:
        conn.execute(delete(tables.crons).where(tables.crons.c.assistant_id == assistant_id))
    return removed
