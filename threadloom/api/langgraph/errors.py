"""LangGraph's error shapes: request parsing (a body that does not validate is a 422 whose
`detail` says what is wrong in one string, as LangGraph's server answers: its SDKs show
`detail` to the user only when it is a string), and the status of each service error on
this door and the bodies it answers errors with."""

from __future__ import annotations

from typing import TypeVar

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from threadloom.api.json_depth import MAX_DEPTH, too_deep
from threadloom.api.responses import JSONResponse
from threadloom.domain import errors as domain
from threadloom.domain.file import FileTooLarge
from threadloom.services.langgraph.errors import BadRequest, Conflict, NotFound, Unprocessable

M = TypeVar("M", bound=BaseModel)

# Bodies above this are parsed in a thread: up to the 32 MiB request limit takes tens of
# milliseconds, which would stall every stream on the loop.
PARSE_IN_THREAD = 1024 * 1024
# A refused value is echoed back (as FastAPI does) only when small: echoing a large body
# would double what a bad request costs.
MAX_ECHO = 1024


def _echo(value):
    if isinstance(value, (dict, list, str)) and len(orjson.dumps(value)) > MAX_ECHO:
        return None
    return value


def _errors(exc: ValidationError) -> list[dict]:
    return [
        {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"], "input": _echo(e.get("input"))}
        for e in exc.errors(include_url=False, include_context=False)
    ]


def _too_deep() -> RequestValidationError:
    return RequestValidationError([{"type": "json_too_deep", "loc": ["body"],
                                    "msg": f"JSON body nested more than {MAX_DEPTH} levels deep", "input": None}])


def _load(raw: bytes):
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if "depth" in reason or "ecursion" in reason:  # orjson itself stops at 1024 levels
            raise _too_deep() from None
        raise RequestValidationError([{"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": reason}}]) from None
    # Counting brackets (in C) spares the walk for nearly every body: too few to nest deep.
    if too_deep(raw, data):
        raise _too_deep()
    return data


async def parse_body(request: Request, model: type[M]) -> M:
    """The one reader of LangGraph request bodies: every failure is a 422 saying why. An
    empty body (or `null`) reads as the empty object, so routes
    whose fields are all optional need none; `model` says which JSON type a route takes."""
    raw = await request.body()
    if not raw or raw.isspace():
        data = None
    elif len(raw) > PARSE_IN_THREAD:
        data = await run_in_threadpool(_load, raw)
    else:
        data = _load(raw)
    try:
        return model.model_validate({} if data is None else data)
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


# The status of each service error on this door, looked up along the error's class
# hierarchy (api/error_handlers.py). A conflict is a 409 here, as LangGraph's server answers.
STATUSES: dict[type, int] = {
    NotFound: 404,
    domain.NotFound: 404,
    Conflict: 409,
    domain.Conflict: 409,
    Unprocessable: 422,
    BadRequest: 400,
    FileTooLarge: 413,
    domain.Unavailable: 500,
    domain.ServiceError: 400,
}


# -- the door's answers to errors raised below it (api/error_handlers.py calls these, and
# so do the middlewares that answer before any route) -----------------------------------


def service_error(exc: domain.ServiceError, status: int) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=status)


def id_taken() -> JSONResponse:
    return JSONResponse({"detail": "An object with this id already exists."}, status_code=409)


def database_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers={"Retry-After": "1"} if status == 503 else None)


# A body with many faults is told its first few.
MAX_FAULTS_TOLD = 5


def _fault(error: dict) -> str:
    if error.get("type") == "json_invalid":
        return f"Invalid JSON body: {(error.get('ctx') or {}).get('error') or error.get('msg')}"
    where = ".".join(str(part) for part in error.get("loc", ())[1:])  # after "body"
    return f"{where}: {error['msg']}" if where else error["msg"]


def validation_message(errors: list[dict]) -> str:
    told = [_fault(e) for e in errors[:MAX_FAULTS_TOLD]]
    if len(errors) > MAX_FAULTS_TOLD:
        told.append(f"and {len(errors) - MAX_FAULTS_TOLD} more")
    return "; ".join(told) or "Invalid request body"


def request_validation_error(errors: list[dict]) -> JSONResponse:
    return JSONResponse({"detail": validation_message(errors)}, status_code=422)


def http_error(method: str, path: str, status: int, detail) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def unauthorized(key: str | None) -> JSONResponse:
    return JSONResponse({"detail": "Invalid API key"}, status_code=401)


def too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"Request too large: this server accepts request bodies of at most {limit} bytes."},
                        status_code=413)


def internal_error() -> JSONResponse:
    return JSONResponse({"detail": "Internal server error"}, status_code=500)
