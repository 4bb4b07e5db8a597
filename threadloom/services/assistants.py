"""Assistants: create, read, modify, delete, list."""

from __future__ import annotations

from threadloom.domain.assistant import (
    CreateAssistantRequest,
    ModifyAssistantRequest,
    assistant_wire,
    modify_assistant,
    new_assistant,
)
from threadloom.domain.errors import NotFound
from threadloom.services.tool_resources import ToolResourceLinker
from threadloom.store.database import Database
from threadloom.store.objects import assistant_store
from threadloom.store.pagination import PageQuery, page_wire


class AssistantService:
    def __init__(self, db: Database, linker: ToolResourceLinker):
        self.db = db
        self.linker = linker

    async def create(self, req: CreateAssistantRequest, graph_id: str | None = None) -> dict:
        body = new_assistant(req)

        self.linker.check_tools(body["tools"])

        def insert(conn):
            body["tool_resources"] = self.linker.resolve(conn, body["tool_resources"])
            assistant_store.insert(conn, body, graph_id=graph_id)

        await self.db.transact(insert)
        self.linker.wake_ingestion()
        return body

    async def get(self, assistant_id: str) -> dict:
        return await self.db.query(lambda conn: assistant_store.get(conn, assistant_id))

    async def modify(self, assistant_id: str, req: ModifyAssistantRequest) -> dict:
        def change(conn):
            body = modify_assistant(assistant_store.get(conn, assistant_id), req)
            self.linker.check_tools(body["tools"])
            body["tool_resources"] = self.linker.resolve(conn, body["tool_resources"])
            assistant_store.put(conn, body)
            return body

        body = await self.db.transact(change)
        self.linker.wake_ingestion()
        return body

    async def delete(self, assistant_id: str) -> dict:
        def remove(conn):
            if not assistant_store.delete(conn, assistant_id):
                raise NotFound.of("assistant", assistant_id)

        await self.db.transact(remove)
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

    async def list(self, query: PageQuery) -> dict:
        data, has_more = await self.db.query(lambda conn: assistant_store.page(conn, query))
        return page_wire([assistant_wire(body) for body in data], has_more)
