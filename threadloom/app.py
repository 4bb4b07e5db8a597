"""The ASGI application: the doors over the parts of one process (assembly.py)."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

from asyncpg.exceptions import PostgresConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from threadloom.api.auth import BearerKeyMiddleware
from threadloom.api.langgraph import router as langgraph_router
from threadloom.langgraph.user_graphs import load_config
from threadloom.api.openai import router as openai_router
from threadloom.api.openai.errors import api_error_response, error_response, param_from_loc
from threadloom.api.operations import mount_docs_assets, router as operations_router
from threadloom.api.request_guard import RequestGuardMiddleware
from threadloom.api.request_log import RequestLogMiddleware
from threadloom.api.responses import JSONResponse
from threadloom.assembly import ThreadloomProcess
from threadloom.config import Settings
from threadloom.domain.errors import ApiError

log = logging.getLogger("threadloom")


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1")


def create_app(settings: Settings, migrate: bool = True) -> FastAPI:
    # The user's graphs are imported before the server starts: a broken langgraph.json stops it.
    user_graphs = load_config(settings.langgraph_config) if settings.langgraph_config else {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        process = ThreadloomProcess(settings, executes=settings.executes, migrate=migrate, user_graphs=user_graphs)
        app.state.services = process.services()
        app.state.drain = process.drain
        app.state.process = process
        await process.start(listen=f"http://{settings.host}:{settings.port}")
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's scans, and collect young objects less often. Measured under 1,000
        # held streams, collection pauses took 40% of the loop and delayed deltas by up
        # to a second; with this, p99 delta delay went from 1,047 to 107 ms.
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 1000)
        try:
            yield
        finally:
            await process.stop()

    app = FastAPI(
        title="threadloom",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's built-in OpenTelemetry wrapper costs every request even with no
        # exporter configured.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        if _is_openai(request):
            return api_error_response(exc)
        return JSONResponse({"detail": exc.message}, status_code=409 if exc.status == 400 and exc.code == "conflict" else exc.status)

    @app.exception_handler(IntegrityError)
    async def on_integrity_error(request: Request, exc: IntegrityError):
        # An id given by the client that another project's object already holds (ids are
        # unique across projects, which do not see each other's).
        if _is_openai(request):
            return error_response(400, "An object with this id already exists.", code="conflict")
        return JSONResponse({"detail": "An object with this id already exists."}, status_code=409)

    async def on_database_error(request: Request, exc: Exception):
        unreachable = not isinstance(exc, DBAPIError) or exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
        if not unreachable:
            log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
            message, status = "The server had an error while processing your request.", 500
        else:
            # PostgreSQL restarting or out of reach: the pool reconnects on the next request.
            log.warning("the database is unavailable: %s", getattr(exc, "orig", None) or exc)
            message, status = "The database is unavailable; try again shortly.", 503
        if _is_openai(request):
            return error_response(status, message, "server_error", code="database_unavailable" if status == 503 else None,
                                  headers={"Retry-After": "1"} if status == 503 else None)
        return JSONResponse({"detail": message}, status_code=status)

    # Opening a connection fails outside SQLAlchemy's wrapping: refused, or PostgreSQL
    # still starting.
    for error_class in (DBAPIError, ConnectionError, PostgresConnectionError):
        app.add_exception_handler(error_class, on_database_error)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        if _is_openai(request):
            err = exc.errors()[0]
            param = param_from_loc(tuple(p for p in err["loc"] if p not in ("body", "query", "path")))
            return error_response(400, f"Invalid '{param}': {err['msg']}.", param=param, code="invalid_value")
        return JSONResponse({"detail": exc.errors()}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        if _is_openai(request):
            if exc.status_code == 404:
                return error_response(404, f"Invalid URL ({request.method} {request.url.path})")
            if exc.status_code == 405:
                return error_response(405, f"Method not allowed ({request.method} {request.url.path})")
            return error_response(exc.status_code, str(exc.detail))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.get("/healthz")
    @app.get("/v1/health")
    async def health():
        return JSONResponse({"status": "ok"})

    app.include_router(operations_router)
    mount_docs_assets(app)
    app.include_router(openai_router)
    app.include_router(langgraph_router)
    # Outermost last: the request's id and log line, CORS (so that preflights and 401s
    # carry its headers), the key, the body limits.
    app.add_middleware(RequestGuardMiddleware, max_body=settings.max_request_size, max_upload=settings.max_file_size)
    app.add_middleware(BearerKeyMiddleware, keys=settings.api_keys)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "content-location", "location"],
            max_age=600,
        )
    app.add_middleware(RequestLogMiddleware)
    return app
