"""Errors raised under the routes, answered in the shape of the door the request came
through. Handlers are keyed by exception class (as Starlette looks them up); which door
answers is decided here, once, from the path; each door's module says how it answers
(api/openai/errors.py, api/langgraph/errors.py: statuses by error class, body shapes)."""

from __future__ import annotations

import logging

from asyncpg.exceptions import PostgresConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadloom.api.langgraph import errors as langgraph_door
from threadloom.api.openai import errors as openai_door
from threadloom.domain.errors import ServiceError

log = logging.getLogger("threadloom.api")


def door(request: Request):
    return openai_door if request.url.path.startswith("/v1") else langgraph_door


async def on_service_error(request: Request, exc: ServiceError):
    return door(request).service_error_response(exc)


async def on_integrity_error(request: Request, exc: IntegrityError):
    # An id given by the client that another project's object already holds (ids are
    # unique across projects, which do not see each other's).
    return door(request).id_taken()


async def on_database_error(request: Request, exc: Exception):
    unreachable = not isinstance(exc, DBAPIError) or exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    if not unreachable:
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return door(request).database_error(500, "The server had an error while processing your request.")
    # PostgreSQL restarting or out of reach: the pool reconnects on the next request.
    log.warning("the database is unavailable: %s", getattr(exc, "orig", None) or exc)
    return door(request).database_error(503, "The database is unavailable; try again shortly.")


async def on_validation_error(request: Request, exc: RequestValidationError):
    return door(request).request_validation_error(exc.errors())


async def on_http_error(request: Request, exc: StarletteHTTPException):
    return door(request).http_error(request.method, request.url.path, exc.status_code, exc.detail)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(IntegrityError, on_integrity_error)
    # Opening a connection fails outside SQLAlchemy's wrapping: refused, or PostgreSQL
    # still starting.
    for error_class in (DBAPIError, ConnectionError, PostgresConnectionError):
        app.add_exception_handler(error_class, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
