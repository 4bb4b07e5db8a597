"""JSON containment in SQL, as PostgreSQL's jsonb `@>` answers it (LangGraph's metadata
filters): on PostgreSQL that operator; on SQLite one json_extract comparison per leaf of
the filter (a list in the filter must equal the stored list)."""

from __future__ import annotations

import json

from sqlalchemy import Connection, and_, cast, func, literal, true
from sqlalchemy.dialects.postgresql import JSONB


def _leaves(value: dict, path: str):
    for key, item in value.items():
        here = f'{path}."{key}"' if any(c in str(key) for c in '."[]$ ') else f"{path}.{key}"
        if isinstance(item, dict) and item:
            yield from _leaves(item, here)
        else:
            yield here, item


def json_contains(conn: Connection, document, key: str, subset: dict | None):
    """`document[key]` contains `subset` (document: a JSON column or expression)."""
    if not subset:
        return true()
    if conn.dialect.name == "postgresql":
        return cast(document, JSONB)[key].op("@>")(literal(subset, JSONB))
    conditions = []
    for path, item in _leaves(subset, f"$.{key}"):
        extracted = func.json_extract(document, path)
        if isinstance(item, dict):  # {}: any object
            conditions.append(func.json_type(document, path) == "object")
        elif isinstance(item, list):
            conditions.append(extracted == json.dumps(item, separators=(",", ":")))
        elif item is None:
            conditions.append(func.json_type(document, path) == "null")
        elif isinstance(item, bool):
            conditions.append(func.json_type(document, path) == ("true" if item else "false"))
        else:
            conditions.append(extracted == item)
    return and_(*conditions)
