"""Reading request bodies and list queries into validated values, with OpenAI's errors."""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from threadloom.api.json_depth import MAX_DEPTH, too_deep
from threadloom.api.openai.validation import json_type, validation_error
from threadloom.domain.errors import InvalidRequest
from threadloom.store.pagination import PageQuery

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "ecursion" in str(exc) or "depth" in str(exc):
            raise InvalidRequest(
                f"Invalid body: the JSON is nested more than {MAX_DEPTH} levels deep.", code="invalid_value"
            ) from None
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            code=None,
        )
    if too_deep(raw, data):
        raise InvalidRequest(
            f"Invalid body: the JSON is nested more than {MAX_DEPTH} levels deep.", code="invalid_value"
        )
    if not isinstance(data, dict):
        raise InvalidRequest(
            f"Invalid type for body: expected an object, but got {json_type(data)} instead.", code="invalid_type"
        )
    # JSON can carry NUL only as the escape \u0000; PostgreSQL cannot store it in text or
    # JSONB, so refuse it on every database alike rather than fail at the insert.
    if b"\\u0000" in raw:
        param = _nul_path(data)
        if param is not None:
            raise InvalidRequest(
                f"Invalid '{param}': strings cannot contain the null character (\\u0000).",
                param=param,
                code="invalid_value",
            )
    return data


def _nul_path(value, path: str = "") -> str | None:
    """The param path of the first string (or key) holding a NUL character."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            if "\x00" in key:
                return here
            found = _nul_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def validate(model: type[M], data: dict) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def parse_body(request: Request, model: type[M]) -> tuple[M, dict]:
    data = await read_json(request)
    return validate(model, data), data


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{name}': expected an integer, but got '{raw}' instead.", param=name, code="invalid_type"
        ) from None
    if value > high:
        raise InvalidRequest(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    if value < low:
        raise InvalidRequest(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    return value


def page_query(request: Request, default_limit: int = 20, max_limit: int = 100) -> PageQuery:
    limit = _int_param(request, "limit", default_limit, 1, max_limit)
    order = request.query_params.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.", param="order", code="invalid_value"
        )
    return PageQuery(
        limit=limit,
        order=order,
        after=request.query_params.get("after") or None,
        before=request.query_params.get("before") or None,
    )


def include_param(request: Request, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """`include[]` (as the SDK writes it) or `include`: values the API defines, or a 400."""
    values = request.query_params.getlist("include[]") + request.query_params.getlist("include")
    for value in values:
        if value not in allowed:
            raise InvalidRequest(
                f"Invalid value: '{value}'. Supported values are: {', '.join(repr(a) for a in allowed)}.",
                param="include",
                code="invalid_value",
            )
    return tuple(dict.fromkeys(values))
