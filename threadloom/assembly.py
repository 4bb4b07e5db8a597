"""The parts of one threadloom process, built and started in order, stopped in reverse.

One shape serves the three ways to run it: `serve` alone (API and executor, in-process
bus), `serve --redis` (several such processes sharing the bus), `serve --no-executor`
(an API replica) with `threadloom worker`s (executors without HTTP).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from threadloom.config import Settings, shown_url
from threadloom.domain.run_status import TERMINAL
from threadloom.engine.code_interpreter import CodeInterpreterTool
from threadloom.engine.executor import RunExecutor
from threadloom.engine.run_writer import RunWriter
from threadloom.services.langgraph.door import LangGraphDoor
from threadloom.services.langgraph.user_graphs import GraphConfig
from threadloom.llm.routing import ModelRouter
from threadloom.llm.tokenizer import count_o200k
from threadloom.retrieval.embedders import OpenAICompatEmbedder, local_embedder
from threadloom.retrieval.index import IndexCache
from threadloom.retrieval.ingestion import IngestionWorker
from threadloom.runtime.dispatcher import ClusterDispatcher, LocalDispatcher
from threadloom.runtime.events import EventBus
from threadloom.runtime.retention import ExpirySweeper
from threadloom.runtime.sweeper import RunSweeper
from threadloom.services.assistants import AssistantService
from threadloom.services.files import FileService
from threadloom.services.runs import RunService
from threadloom.services.threads import MessageService, ThreadService
from threadloom.services.tool_resources import ToolResourceLinker
from threadloom.services.vector_stores import VectorStoreService
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


class ModelReadiness:
    """Whether each model route can serve, for /readyz: an embedded model once it loaded,
    an OpenAI-compatible server while it answers `GET /models` (asked at most every 5 s)."""

    def __init__(self, router: ModelRouter):
        self.router = router
        self.states: dict[str, tuple[bool, str]] = {}
        self._checked: dict[str, float] = {}

    def load_embedded(self, route, backend) -> None:
        began = time.monotonic()
        try:
            window = backend.context_window  # reading it loads the model, once
        except Exception as exc:
            log.warning("the embedded model did not load: %s", exc)
            self.states[route.pattern] = (False, f"the embedded model did not load: {exc}")
            return
        seconds = time.monotonic() - began
        log.info("embedded model loaded in %.1f s: %s, context %d tokens", seconds, Path(backend.model_path).name, window,
                 extra={"fields": {"route": route.pattern, "load_seconds": round(seconds, 2), "context": window}})
        self.states[route.pattern] = (True, f"loaded in {seconds:.1f} s, context {window} tokens")

    async def check(self) -> dict[str, tuple[bool, str]]:
        for route in self.router.routes:
            if route.backend == "openai_compat" and time.monotonic() - self._checked.get(route.pattern, 0) > 5:
                self._checked[route.pattern] = time.monotonic()
                self.states[route.pattern] = await _upstream_answers(route.url)
            elif route.backend == "embedded" and route.pattern not in self.states:
                self.states[route.pattern] = (False, "the embedded model is loading")
        return dict(self.states)


async def _upstream_answers(url: str) -> tuple[bool, str]:
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            async with session.get(url.rstrip("/") + "/models") as response:
                if response.status == 200:
                    return True, f"{url} answers"
                hint = " (does the URL end in /v1?)" if response.status == 404 and not url.rstrip("/").endswith("/v1") else ""
                return False, f"{url}/models answered {response.status}{hint}"
    except Exception as exc:
        return False, f"{url} does not answer: {exc.__class__.__name__} {exc}".strip()


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


class ThreadloomProcess:
    """`executes`: this process runs runs and ingests files (serve, worker); an API replica
    (serve --no-executor) leaves both to the workers and wakes them over the bus."""

    def __init__(self, settings: Settings, executes: bool, migrate: bool = True,
                 graph_config: GraphConfig | None = None):
        self.settings = settings
        self.migrate = migrate  # False: the command line brought the schema up to date
        self.executes = executes
        self.owner = f"threadloom-{uuid.uuid4().hex[:12]}"
        self.db = Database(settings.database)
        self.bus = self._bus()
        self.writer = RunWriter(self.db, self.bus)
        self.router = ModelRouter(settings)
        self.embedder = _embedder(settings)
        self.ingestion = IngestionWorker(self.db, self.embedder, self.owner) if executes else None
        wake_ingestion = self.ingestion.wake if self.ingestion else (lambda: self.bus.signal("ingest", ""))
        self.vector_stores = VectorStoreService(self.db, self.embedder, IndexCache(self.db), wake_ingestion)
        if executes:
            self.sessions, code_problem = _code_sessions(settings)
        else:
            # The workers run the code; each says at its start whether it can.
            self.sessions, code_problem = None, None
        self.files = FileService(self.db, settings.max_file_size)
        code = CodeInterpreterTool(self.sessions, self.files) if self.sessions is not None else None
        self.local = (
            LocalDispatcher(RunExecutor(self.writer, self.router, self.owner, self.vector_stores, code)) if executes else None
        )
        self.dispatcher = ClusterDispatcher(self.bus, self.local) if settings.redis else self.local
        self.sweeper = RunSweeper(self.writer, self.dispatcher, self.owner, local=self.local, bus=self.bus if settings.redis else None)
        self.expiry = ExpirySweeper(self.db)
        self.linker = ToolResourceLinker(self.embedder.model, wake_ingestion, code_problem)
        self.runs = RunService(self.db, self.bus, self.writer, self.dispatcher, self.linker, run_ttl=settings.run_ttl)
        self.models = ModelReadiness(self.router)
        self.langgraph: LangGraphDoor | None = None
        self.graph_config = graph_config or GraphConfig()
        self._langgraph_tasks: list[asyncio.Task] = []  # its sweeps and its cron scheduler
        self.code_problem = code_problem

    def _bus(self):
        if not self.settings.redis:
            return EventBus()
        from threadloom.runtime.redis_events import RedisEventBus

        return RedisEventBus(self.settings.redis, self._final_event)

    async def _final_event(self, run_id: str) -> tuple[str, dict] | None:
        """The event that ends a run's stream, made from the store (the bus lost it)."""
        loaded = await self.writer.load(run_id)
        if loaded is None:
            return None
        run = loaded[0]
        if run["status"] in TERMINAL or run["status"] == "requires_action":
            return f"thread.run.{run['status']}", run
        return None

    def services(self) -> Services:
        if self.langgraph is None:
            self.langgraph = LangGraphDoor(self.db, self.bus, self.runs, self.graph_config, self.embedder)
        return Services(
            db=self.db,
            assistants=AssistantService(self.db, self.linker),
            threads=ThreadService(self.db, self.linker),
            messages=MessageService(self.db, self.linker),
            runs=self.runs,
            bus=self.bus,
            router=self.router,
            files=self.files,
            vector_stores=self.vector_stores,
            langgraph=self.langgraph,
        )

    async def start(self, listen: str | None = None) -> None:
        """`listen`: the URL this process serves HTTP on (None: a worker)."""
        if self.migrate:
            await self.db.migrate()
        await self.bus.start()
        if self.settings.redis and self.local is not None:
            self.bus.listen(
                {"cancel": self._cancel_here, "ingest": lambda _: self.ingestion.wake()},
                on_reconnect=self.sweeper.wake,
                # The claim is conditional: a run another process took meanwhile is let be.
                take=self.local.submit,
                has_room=lambda: self.local.free_slots() > 0,
            )
        await self.sweeper.start()
        if self.ingestion is not None:
            await self.ingestion.start()
        await self.expiry.start()
        if self.langgraph is not None:
            loop = asyncio.get_running_loop()
            self._langgraph_tasks = [loop.create_task(self.langgraph.runs.sweep_forever()),
                                     loop.create_task(self.langgraph.threads.sweep_forever(self.graph_config.sweep_seconds)),
                                     loop.create_task(self.langgraph.cron_scheduler.run_forever())]
        self.banner(listen)
        if self.executes:
            self._warm_models()

    def _cancel_here(self, run_id: str) -> None:
        # The replica that took the cancel wrote `cancelling`; the turn running here ends it.
        if run_id in self.local.running():
            self.local.cancel(run_id)

    def _warm_models(self) -> None:
        loop = asyncio.get_running_loop()
        if any(r.backend == "openai_compat" for r in self.settings.routes):
            # The tokenizer's tables take about a second to load: not on the first run's time.
            loop.run_in_executor(None, count_o200k, "warm up")
        for route in self.settings.routes:
            if route.backend == "embedded":
                # Load the local model in a thread now rather than on the event loop when the
                # first run asks for its context window. A model that cannot load is
                # reported by /readyz and by the runs that need it.
                try:
                    backend = self.router.backend_of(route)
                except Exception as exc:
                    log.warning("the embedded model is not available: %s", exc)
                    self.models.states[route.pattern] = (False, str(exc))
                else:
                    loop.run_in_executor(None, self.models.load_embedded, route, backend)

    async def readiness(self) -> dict[str, tuple[bool, str]]:
        """Each check /readyz makes: the database, Redis, and (where runs execute) the models."""
        checks: dict[str, tuple[bool, str]] = {}
        try:
            await self.db.ping()
            checks["database"] = (True, "reachable")
        except Exception as exc:
            checks["database"] = (False, f"unreachable: {exc.__class__.__name__}")
        if self.settings.redis:
            checks["redis"] = await self.bus.ping()
        if self.executes:
            for pattern, state in (await self.models.check()).items():
                checks[f"model {pattern}"] = state
        return checks

    def banner(self, listen: str | None) -> None:
        """What this process is, in a few lines at start."""
        from threadloom import __version__

        role = "worker" if listen is None else ("API replica (runs execute on workers)" if not self.executes else "server")
        head = f"threadloom {__version__} {role}"
        lines = [head + f" listening on {listen}" if listen else head]
        lines.append(f"database: {shown_url(self.settings.database)}")
        lines.append(f"event bus: {'Redis ' + shown_url(self.settings.redis) if self.settings.redis else 'in-process'}")
        if self.executes:
            for route in self.settings.routes:
                if route.backend == "embedded":
                    path = route.model_path or self.settings.model_path
                    try:
                        path = path or self.router.backend_of(route).model_path
                        size = f", {Path(path).stat().st_size / 2**20:.0f} MiB"
                    except Exception:
                        size = ""
                    lines.append(f"model {route.pattern!r}: embedded {path or 'packaged SmolLM2-135M'}{size}, context up to "
                                 f"{self.settings.embedded_context} tokens (loading in the background)")
                else:
                    sent = f", sent as {route.model!r}" if route.model else ""
                    lines.append(f"model {route.pattern!r}: OpenAI-compatible server {route.url}{sent}")
            lines.append("code_interpreter: " + ("bubblewrap sandbox" if self.sessions is not None else f"off ({self.code_problem})"))
        embeddings = "local all-MiniLM-L6-v2 (int8 ONNX, offline)" if self.settings.embeddings == "local" else \
            f"{self.settings.embeddings} model {self.settings.embeddings_model}"
        lines.append(f"embeddings: {embeddings}")
        keys = self.settings.api_keys or {}
        projects = sorted(set(keys.values()))
        lines.append(f"auth: {len(keys)} API key(s), project(s) {', '.join(projects)}" if keys else "auth: off (any key or none is accepted)")
        for line in lines:
            log.info(line)

    async def drain(self, abort=lambda: False) -> None:
        await self.dispatcher.drain(self.settings.shutdown_grace, abort)

    async def stop(self) -> None:
        for task in self._langgraph_tasks:
            task.cancel()
        await asyncio.gather(*self._langgraph_tasks, return_exceptions=True)
        await self.expiry.stop()
        if self.sessions is not None:
            await self.sessions.aclose()
        if self.ingestion is not None:
            await self.ingestion.stop()
        await self.sweeper.stop()
        await self.dispatcher.shutdown()
        await self.bus.aclose()
        await self.router.aclose()
        await self.embedder.aclose()
        await self.db.dispose()

