"""What a user graph's values look like on the wire: JSON, with LangChain messages as
their dicts (`model_dump`), interrupts as {value, id, response_schema}, dataclasses and named tuples as
objects, sets as lists, exceptions as {error, message} (as LangGraph's server shows them)."""

from __future__ import annotations

import dataclasses
from collections import deque
from datetime import date, datetime
from enum import Enum
from uuid import UUID

import orjson
from langgraph.types import Interrupt, Send


def _default(obj):
    if isinstance(obj, Interrupt):
        return {"value": obj.value, "id": obj.id, "response_schema": getattr(obj, "response_schema", None)}
    if isinstance(obj, Send):
        return {"node": obj.node, "args": obj.arg}
    if hasattr(obj, "model_dump") and not isinstance(obj, type):
        return obj.model_dump()
    if hasattr(obj, "_asdict") and not isinstance(obj, type):
        return obj._asdict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    if isinstance(obj, (set, frozenset, deque, tuple)):
        return list(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (UUID, Enum)):
        return str(obj.value if isinstance(obj, Enum) else obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return repr(obj)


_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def jsonable(value):
    """The value as plain JSON types (to keep in a JSON column or return from wait)."""
    return orjson.loads(dumps(value))
