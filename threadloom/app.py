"""The ASGI application: wires the store, the services, the runtime and the doors."""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
from pathlib import Path
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadloom.api.auth import BearerKeyMiddleware
from threadloom.api.request_guard import RequestGuardMiddleware
from threadloom.api.langgraph import router as langgraph_router
from threadloom.api.openai import router as openai_router
from threadloom.api.openai.errors import api_error_response, error_response, param_from_loc
from threadloom.api.responses import JSONResponse
from threadloom.config import Settings
from threadloom.domain.errors import ApiError
import uuid

from threadloom.engine.code_interpreter import CodeInterpreterTool
from threadloom.engine.executor import RunExecutor
from threadloom.engine.run_writer import RunWriter
from threadloom.langgraph.door import LangGraphDoor
from threadloom.llm.routing import ModelRouter
from threadloom.llm.tokenizer import count_o200k
from threadloom.runtime.dispatcher import LocalDispatcher
from threadloom.runtime.events import EventBus
from threadloom.runtime.sweeper import RunSweeper
from threadloom.retrieval.embedders import OpenAICompatEmbedder, local_embedder
from threadloom.retrieval.index import IndexCache
from threadloom.retrieval.ingestion import IngestionWorker
from threadloom.runtime.retention import ExpirySweeper
from threadloom.services.assistants import AssistantService
from threadloom.services.files import FileService
from threadloom.services.vector_stores import VectorStoreService
from threadloom.services.runs import RunService
from threadloom.services.threads import MessageService, ThreadService
from threadloom.services.tool_resources import ToolResourceLinker
from threadloom.store.database import Database

log = logging.getLogger("threadloom")


@dataclass
class Services:
    db: Database
    assistants: AssistantService
    threads: ThreadService
    messages: MessageService
    runs: RunService
    bus: EventBus
    router: ModelRouter
    files: FileService
    vector_stores: VectorStoreService
    langgraph: LangGraphDoor | None = None


def _load_embedded(backend) -> None:
    try:
        backend.context_window  # reading it loads the model, once
    except Exception as exc:
        log.warning("the embedded model did not load at start: %s", exc)


def _code_sessions(settings: Settings):
    """The sandboxed code sessions, or None and why code_interpreter cannot run here."""
    try:
        from threadloom.sandbox import CodeSessions, sandbox_problem
    except ImportError as exc:
        problem = f"the sandbox cannot be loaded ({exc})"
    else:
        problem = sandbox_problem()
        if problem is None:
            root = Path(settings.sandbox_dir or tempfile.mkdtemp(prefix="threadloom-sandboxes-"))
            return CodeSessions(root, idle_seconds=settings.code_idle, timeout=settings.code_timeout), None
    log.warning("code_interpreter is off: %s", problem)
    return None, problem


def _embedder(settings: Settings):
    if settings.embeddings == "local":
        return local_embedder()
    return OpenAICompatEmbedder(settings.embeddings, settings.embeddings_model, settings.embeddings_api_key)


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database(settings.database)
        await db.migrate()
        owner = f"threadloom-{uuid.uuid4().hex[:12]}"
        bus = EventBus()
        writer = RunWriter(db, bus)
        router = ModelRouter(settings)
        embedder = _embedder(settings)
        ingestion = IngestionWorker(db, embedder, owner)
        vector_stores = VectorStoreService(db, embedder, IndexCache(db), ingestion.wake)
        sessions, code_problem = _code_sessions(settings)
        files = FileService(db, settings.max_file_size)
        code = CodeInterpreterTool(sessions, files) if sessions is not None else None
        dispatcher = LocalDispatcher(RunExecutor(writer, router, owner, vector_stores, code))
        sweeper = RunSweeper(writer, dispatcher, owner)
        expiry = ExpirySweeper(db)
        linker = ToolResourceLinker(embedder.model, ingestion.wake, code_problem)
        runs = RunService(db, bus, writer, dispatcher, linker, run_ttl=settings.run_ttl)
        app.state.services = Services(
            db=db,
            assistants=AssistantService(db, linker),
            threads=ThreadService(db, linker),
            messages=MessageService(db, linker),
            runs=runs,
            bus=bus,
            router=router,
            files=files,
            vector_stores=vector_stores,
            langgraph=LangGraphDoor(db, bus, runs),
        )
        async def drain(abort) -> None:
            await dispatcher.drain(settings.shutdown_grace, abort)

        app.state.drain = drain
        await sweeper.start()
        await ingestion.start()
        await expiry.start()
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's scans, and collect young objects less often. Measured under 1,000
        # held streams, collection pauses took 40% of the loop and delayed deltas by up
        # to a second; with this, p99 delta delay went from 1,047 to 107 ms.
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 1000)
        loop = asyncio.get_running_loop()
        if any(r.backend == "openai_compat" for r in settings.routes):
            # The tokenizer's tables take about a second to load: not on the first run's time.
            loop.run_in_executor(None, count_o200k, "warm up")
        for route in settings.routes:
            if route.backend == "embedded":
                # Load the local model in a thread now rather than on the event loop when the
                # first run asks for its context window. A model that cannot load is
                # reported by the runs that need it.
                try:
                    backend = router.backend_of(route)
                except Exception as exc:
                    log.warning("the embedded model is not available: %s", exc)
                else:
                    loop.run_in_executor(None, _load_embedded, backend)
        try:
            yield
        finally:
            await expiry.stop()
            if sessions is not None:
                await sessions.aclose()
            await ingestion.stop()
            await sweeper.stop()
            await dispatcher.shutdown()
            await router.aclose()
            await embedder.aclose()
            await db.dispose()

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

    app.include_router(openai_router)
    app.include_router(langgraph_router)
    app.add_middleware(RequestGuardMiddleware, max_body=settings.max_request_size, max_upload=settings.max_file_size)
    app.add_middleware(BearerKeyMiddleware, keys=settings.api_keys)
    return app
