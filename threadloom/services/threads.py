"""Threads and their messages."""

from __future__ import annotations

import time

from threadloom.domain.errors import Conflict, NotFound
from threadloom.domain.message import CreateMessageRequest, ModifyMessageRequest, new_message
from threadloom.domain.metadata import check_metadata
from threadloom.domain.thread import CreateThreadRequest, ModifyThreadRequest, modify_thread, new_thread
from threadloom.services.tool_resources import ToolResourceLinker
from threadloom.store.database import Database
from threadloom.store.threads import delete_thread
from threadloom.store.objects import message_store, thread_store
from threadloom.store.pagination import PageQuery, page_wire
from threadloom.store.thread_lock import active_run_id, lock_thread


def message_row(body: dict) -> dict:
    return {
        "ordinal": time.time_ns(),
        "id": body["id"],
        "created_at": body["created_at"],
        "thread_id": body["thread_id"],
        "run_id": body["run_id"],
        "body": body,
    }


def thread_messages(thread_id: str, requests: list[CreateMessageRequest] | None, run_id: str | None = None) -> list[dict]:
    now = int(time.time())
    return [new_message(thread_id, req, run_id=run_id, now=now) for req in requests or []]


def insert_thread(conn, req: CreateThreadRequest, linker: ToolResourceLinker, param: str = "tool_resources") -> dict:
    """Insert a thread and its initial messages in the caller's transaction; what its tool
    resources and attachments name is checked and linked."""
    body = new_thread(req)
    body["tool_resources"] = linker.resolve(conn, body["tool_resources"], param)
    thread_store.insert(conn, body, updated_at=body["created_at"])
    messages = thread_messages(body["id"], req.messages)
    message_store.insert_many(conn, [message_row(m) for m in messages])
    return linker.attach(conn, body, messages)


class ThreadService:
    def __init__(self, db: Database, linker: ToolResourceLinker):
        self.db = db
        self.linker = linker

    async def create(self, req: CreateThreadRequest) -> dict:
        # Validate every message before writing anything.
        for i, message in enumerate(req.messages or []):
            check_metadata(message.metadata, f"messages[{i}].metadata")
        body = await self.db.transact(lambda conn: insert_thread(conn, req, self.linker))
        self.linker.wake_ingestion()
        return body

    async def get(self, thread_id: str) -> dict:
        return await self.db.query(lambda conn: thread_store.get(conn, thread_id))

    async def modify(self, thread_id: str, req: ModifyThreadRequest) -> dict:
        def change(conn):
            body = modify_thread(thread_store.get(conn, thread_id), req)
            body["tool_resources"] = self.linker.resolve(conn, body["tool_resources"])
            thread_store.put(conn, body, updated_at=int(time.time()))
            return body

        body = await self.db.transact(change)
        self.linker.wake_ingestion()
        return body

    async def delete(self, thread_id: str) -> dict:
        def remove(conn):
            thread_store.get(conn, thread_id)
            delete_thread(conn, thread_id)

        await self.db.transact(remove)
        return {"id": thread_id, "object": "thread.deleted", "deleted": True}


class MessageService:
    def __init__(self, db: Database, linker: ToolResourceLinker):
        self.db = db
        self.linker = linker

    async def create(self, thread_id: str, req: CreateMessageRequest) -> dict:
        check_metadata(req.metadata)

        def add(conn):
            thread = lock_thread(conn, thread_id)
            run_id = active_run_id(conn, thread_id)
            if run_id:
                raise Conflict(f"Can't add messages to {thread_id} while a run {run_id} is active.")
            body = new_message(thread_id, req)
            message_store.insert(conn, body, thread_id=thread_id, run_id=None, ordinal=time.time_ns())
            self.linker.attach(conn, thread, [body])
            return body

        body = await self.db.transact(add)
        if body["attachments"]:
            self.linker.wake_ingestion()
        return body

    async def get(self, thread_id: str, message_id: str) -> dict:
        def find(conn):
            thread_store.get(conn, thread_id)
            return message_store.get(conn, message_id, thread_id=thread_id)

        return await self.db.query(find)

    async def modify(self, thread_id: str, message_id: str, req: ModifyMessageRequest) -> dict:
        def change(conn):
            thread_store.get(conn, thread_id)
            body = dict(message_store.get(conn, message_id, thread_id=thread_id))
            if "metadata" in req.model_fields_set:
                body["metadata"] = check_metadata(req.metadata) or {}
            message_store.put(conn, body)
            return body

        return await self.db.transact(change)

    async def delete(self, thread_id: str, message_id: str) -> dict:
        def remove(conn):
            thread_store.get(conn, thread_id)
            if not message_store.delete(conn, message_id, thread_id=thread_id):
                raise NotFound.of("message", message_id)

        await self.db.transact(remove)
        return {"id": message_id, "object": "thread.message.deleted", "deleted": True}

    async def list(self, thread_id: str, query: PageQuery, run_id: str | None = None) -> dict:
        where = {"thread_id": thread_id}
        if run_id:
            where["run_id"] = run_id

        def page(conn):
            thread_store.get(conn, thread_id)
            return message_store.page(conn, query, **where)

        data, has_more = await self.db.query(page)
        return page_wire(data, has_more)
