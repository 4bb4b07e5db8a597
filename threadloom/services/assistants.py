"""Assistants: create, read, modify, delete, list."""

from __future__ import annotations

from threadloom.domain.assistant import (
    CreateAssistantRequest,
    ModifyAssistantRequest,
    assistant_wire,
    modify_assistant,
    new_assistant,
)
from threadloom.store.database import Database
from threadloom.store.objects import assistant_store
from threadloom.store.pagination import PageQuery, page_wire


class AssistantService:
    def __init__(self, db: Database):
        self.db = db

    async def create(self, req: CreateAssistantRequest, graph_id: str | None = None) -> dict:
        body = new_assistant(req)
        async with self.db.write() as conn:
            await assistant_store.insert(conn, body, graph_id=graph_id)
        return body

    async def get(self, assistant_id: str) -> dict:
        async with self.db.read() as conn:
            return await assistant_store.get(conn, assistant_id)

    async def modify(self, assistant_id: str, req: ModifyAssistantRequest) -> dict:
        async with self.db.write() as conn:
            body = modify_assistant(await assistant_store.get(conn, assistant_id), req)
            await assistant_store.put(conn, body)
        return body

    async def delete(self, assistant_id: str) -> dict:
        async with self.db.write() as conn:
            if not await assistant_store.delete(conn, assistant_id):
                await assistant_store.get(conn, assistant_id)  # raises NotFound
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

    async def list(self, query: PageQuery) -> dict:
        async with self.db.read() as conn:
            data, has_more = await assistant_store.page(conn, query)
        return page_wire([assistant_wire(body) for body in data], has_more)
