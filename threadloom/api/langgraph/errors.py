"""Request parsing with LangGraph's error shapes: a body that does not validate is a 422
with FastAPI's `{"detail": [...]}` (LangGraph's own server answers the same way)."""

from __future__ import annotations

from typing import TypeVar

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from threadloom.langgraph.errors import Unprocessable

M = TypeVar("M", bound=BaseModel)


def _errors(exc: ValidationError) -> list[dict]:
    return [
        {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"], "input": e.get("input")}
        for e in exc.errors(include_url=False, include_context=False)
    ]


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error",
                                       "input": {}}]) from None
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(_errors(exc)) from None


def int_param(request: Request, name: str, default: int, low: int = 0, high: int = 10_000) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Unprocessable(f"Invalid {name} {raw}") from None
    if not low <= value <= high:
        raise Unprocessable(f"Invalid {name} {raw}")
    return value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    return raw.lower() in ("true", "yes", "1")
