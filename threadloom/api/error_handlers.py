"""Errors answered in the shape of the door the request came through. Which door that is
is decided here, once, from the path (door_for: the middlewares that answer before any
route ask it too). Handlers are keyed by exception class, as Starlette looks them up; each
door's module says how it answers (api/openai/errors.py, api/langgraph/errors.py: its
status by error class, its body shapes)."""

from __future__ import annotations

import logging

from asyncpg.exceptions import PostgresConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadloom.api.langgraph import errors as langgraph_door
from threadloom.api.openai import errors as openai_door
from threadloom.domain.errors import ServiceError
from threadloom.store.database import unreachable

log = logging.getLogger("threadloom.api")


def door_for(path: str):
    """The errors module of the door a path belongs to: /v1 is OpenAI's; every other path
    (LangGraph's routes, and the operator's, which share its plain `{"detail": ...}`) LangGraph's."""
    return openai_door if path.startswith("/v1") else langgraph_door


def status_of(statuses: dict[type, int], exc: Exception) -> int:
    # Along the class hierarchy, as Starlette finds a handler: a door names the classes it
    # answers differently and falls back on ServiceError's status for the rest.
    for cls in type(exc).__mro__:
        if cls in statuses:
            return statuses[cls]
    raise LookupError(f"no status for {type(exc).__name__}")


async def on_service_error(request: Request, exc: ServiceError):
    door = door_for(request.url.path)
    return door.service_error(exc, status_of(door.STATUSES, exc))


async def on_integrity_error(request: Request, exc: IntegrityError):
    # An id given by the client that another project's object already holds (ids are
    # unique across projects, which do not see each other's).
    return door_for(request.url.path).id_taken()


async def on_database_error(request: Request, exc: Exception):
    door = door_for(request.url.path)
    if isinstance(exc, DBAPIError) and not unreachable(exc):
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return door.database_error(500, "The server had an error while processing your request.")
    # PostgreSQL restarting or out of reach: the pool reconnects on the next request.
    log.warning("the database is unavailable: %s", getattr(exc, "orig", None) or exc)
    return door.database_error(503, "The database is unavailable; try again shortly.")


async def on_validation_error(request: Request, exc: RequestValidationError):
    return door_for(request.url.path).request_validation_error(exc.errors())


async def on_http_error(request: Request, exc: StarletteHTTPException):
    return door_for(request.url.path).http_error(request.method, request.url.path, exc.status_code, exc.detail)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(IntegrityError, on_integrity_error)
    # Opening a connection fails outside SQLAlchemy's wrapping: refused, or PostgreSQL
    # still starting.
    for error_class in (DBAPIError, ConnectionError, PostgresConnectionError):
        app.add_exception_handler(error_class, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
