"""The LangGraph door's services, built once on the app's store, bus and run service."""

from __future__ import annotations

import logging

from threadloom.services.langgraph.assistants import LangGraphAssistants
from threadloom.services.langgraph.catalog import GraphCatalog
from threadloom.services.langgraph.crons import CronScheduler, LangGraphCrons
from threadloom.services.langgraph.graph_runs import GraphRuns
from threadloom.services.langgraph.graph_state import GraphThreadStates
from threadloom.services.langgraph.requests import RunCreate
from threadloom.services.langgraph.runs import LangGraphRuns
from threadloom.services.langgraph.thread_streams import ThreadStreams
from threadloom.services.langgraph.threads import LangGraphThreads
from threadloom.services.langgraph.user_graphs import GraphConfig
from threadloom.runtime.events import EventBus
from threadloom.services.runs import RunService
from threadloom.store.database import Database

from threadloom.store.graph_checkpoints import DatabaseCheckpointSaver
from threadloom.store.graph_items import DatabaseStore, StoreIndex

log = logging.getLogger("threadloom.langgraph")


def store_index(config: GraphConfig, embedder) -> StoreIndex | None:
    """langgraph.json's store.index, embedded by the server's embedder: a config naming
    another model (`embed`) or size (`dims`) is told which one does the work."""
    if config.store_index is None or embedder is None:
        return None
    asked, dims = config.store_index["embed"], config.store_index["dims"]
    if (asked and asked != embedder.model) or (dims and embedder.dimensions and dims != embedder.dimensions):
        log.warning("langgraph.json: store.index asks for %s (%s dims); the store is embedded by %s (%s dims), "
                    "the server's embedder", asked or "a model", dims or "?", embedder.model, embedder.dimensions or "?")
    return StoreIndex(embedder, config.store_index["fields"])


class LangGraphDoor:
    def __init__(self, db: Database, bus: EventBus, runs: RunService, config: GraphConfig | None = None,
                 embedder=None):
        config = config or GraphConfig()
        self.catalog = GraphCatalog(config.graphs)
        checkpointer = DatabaseCheckpointSaver(db)
        self.store = DatabaseStore(db, ttl_config=config.store_ttl, index=store_index(config, embedder))
        self.assistants = LangGraphAssistants(db, self.catalog)
        self.graph_runs = GraphRuns(db, bus, self.catalog, checkpointer, self.store)
        self.threads = LangGraphThreads(db, GraphThreadStates(self.catalog, checkpointer, self.store), runs.dispatcher,
                                        stop_graph_runs=self.graph_runs.stop, default_ttl=config.thread_ttl)
        self.runs = LangGraphRuns(db, bus, runs, self.catalog, self.graph_runs, config.thread_ttl)
        self.thread_streams = ThreadStreams(db, self.runs)
        self.cron_scheduler = CronScheduler(db, self.create_run)
        self.crons = LangGraphCrons(db, self.catalog, self.assistants, self.cron_scheduler.wake)

    async def create_run(self, thread_id: str | None, payload: RunCreate) -> dict:
        """Create a background run (what POST /threads/{id}/runs and POST /runs do) and
        return the run object; crons fire through here."""
        row = await self.runs.create(self.runs.prepare(thread_id, payload))
        return row.wire()
