"""The LangGraph door's services, built once on the app's store, bus and run service."""

from __future__ import annotations

from threadloom.langgraph.assistants import LangGraphAssistants
from threadloom.langgraph.runs import LangGraphRuns
from threadloom.langgraph.threads import LangGraphThreads
from threadloom.runtime.events import EventBus
from threadloom.services.runs import RunService
from threadloom.store.database import Database


class LangGraphDoor:
    def __init__(self, db: Database, bus: EventBus, runs: RunService):
        self.assistants = LangGraphAssistants(db)
        self.threads = LangGraphThreads(db, runs.dispatcher)
        self.runs = LangGraphRuns(db, bus, runs)
