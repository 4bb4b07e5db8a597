"""Cursor pagination, done once: limit, order, after, before over the insertion order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Table, select
from sqlalchemy import Connection

from threadloom.domain.errors import InvalidRequest


@dataclass
class PageQuery:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def page_wire(data: list[dict], has_more: bool) -> dict:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _cursor_seq(conn: Connection, table: Table, scope: list, cursor: str, param: str) -> int:
    seq = None if "\x00" in cursor else conn.execute(select(table.c.seq).where(table.c.id == cursor, *scope)).scalar()
    if seq is None:
        raise InvalidRequest(
            f"Invalid '{param}': no object with id '{cursor}' in this list.", param=param, code="invalid_value"
        )
    return seq


def fetch_page(conn: Connection, table: Table, scope: list, query: PageQuery) -> tuple[list[dict], bool]:
    """Bodies of one page and whether more lie beyond it in the direction of travel.

    `after=X`: items strictly after X in the requested order. `before=X`: the `limit` items
    nearest to X on its other side, still returned in the requested order.
    """
    where = list(scope)
    desc = query.order == "desc"
    if query.after:
        seq = _cursor_seq(conn, table, scope, query.after, "after")
        where.append(table.c.seq < seq if desc else table.c.seq > seq)
    if query.before:
        seq = _cursor_seq(conn, table, scope, query.before, "before")
        where.append(table.c.seq > seq if desc else table.c.seq < seq)
    # With only `before`, walk away from X (towards the list's start) and flip back.
    backwards = bool(query.before) and not query.after
    ascending = desc == backwards
    order = table.c.seq.asc() if ascending else table.c.seq.desc()
    stmt = select(table.c.body).where(*where).order_by(order).limit(query.limit + 1)
    rows = [row[0] for row in (conn.execute(stmt)).all()]
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    return rows, has_more
