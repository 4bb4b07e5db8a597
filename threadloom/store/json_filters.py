"""JSON filters in SQL. Containment, as PostgreSQL's jsonb `@>` answers it (LangGraph's
metadata filters): on PostgreSQL that operator; on SQLite one json_extract comparison per
leaf of the filter (a list in the filter must equal the stored list). And one top-level
member compared to a scalar (the /store's filters, checkpoint metadata)."""

from __future__ import annotations

import json
import math
import operator
from decimal import Decimal

from sqlalchemy import Connection, Numeric, and_, case, cast, false, func, literal, or_, true
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


# -- one top-level member compared as JSON (LangGraph's store filters, checkpoint metadata) --
# A string equals only a string, a number only a number, true only true; None also matches
# a missing member (as `dict.get` does). PostgreSQL evaluates both sides of an AND, so a
# member is cast to a number only under a CASE that has seen a number: a cast of a string
# would fail the whole query.

RANGES = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


class _Member:
    """`document[key]` as SQL sees it: its JSON type, its text, its number."""

    def __init__(self, conn: Connection, document, key: str):
        if conn.dialect.name == "postgresql":
            kind = func.json_typeof(document[key])
            self.null = or_(kind.is_(None), kind == "null")
            self.text = document[key].as_string()
            self.string, self.boolean = kind == "string", kind == "boolean"
            self.number = case((kind == "number", cast(self.text, Numeric)))
            self.true = self.text == "true"
        else:
            path = f'$."{key}"'
            kind, raw = func.json_type(document, path), func.json_extract(document, path)
            self.null = or_(kind.is_(None), kind == "null")
            self.text, self.string, self.boolean = raw, kind == "text", kind.in_(("true", "false"))
            self.number = case((kind.in_(("integer", "real")), raw))
            self.true = kind == "true"


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(conn: Connection, value):
    # PostgreSQL compares NUMERIC with NUMERIC: exact for integers past 2**53.
    return literal(Decimal(repr(value)), Numeric) if conn.dialect.name == "postgresql" else literal(value)


def _nameable(conn: Connection, key: str) -> bool:
    # PostgreSQL takes no NUL in a text parameter; SQLite's paths cannot quote a quote.
    return "\x00" not in key if conn.dialect.name == "postgresql" else '"' not in key


def json_equals(conn: Connection, document, key: str, value):
    """`document[key]` equals the scalar `value`; None when SQL cannot say (an object, a
    list, a key or string the database cannot take): the caller compares those itself."""
    if not _nameable(conn, key):
        return None
    member = _Member(conn, document, key)
    if value is None:
        return member.null
    if isinstance(value, bool):
        return and_(member.boolean, member.true if value else ~member.true)
    if is_number(value):
        return member.number == _number(conn, value)
    if isinstance(value, str) and "\x00" not in value:
        return and_(member.string, member.text == value)
    return None


def json_differs(conn: Connection, document, key: str, value):
    """The negation of `json_equals`, true for a missing member (unless `value` is None)."""
    equal = json_equals(conn, document, key, value)
    return None if equal is None else ~func.coalesce(equal, false())


def json_compares(conn: Connection, document, key: str, op: str, value):
    """`document[key]` is a number and compares by `op` ($gt $gte $lt $lte) to the number
    `value`; None when `value` is not a number."""
    if op not in RANGES or not is_number(value) or not _nameable(conn, key):
        return None
    number = _Member(conn, document, key).number
    return RANGES[op](number, _number(conn, value))
