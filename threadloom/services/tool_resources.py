"""What `tool_resources` and message `attachments` refer to, made real in the caller's
transaction: ids that name nothing are refused at the request (not left for a run to trip
on), the `vector_stores` helper becomes a store, and files attached to messages join the
thread's resources — file_search ones in the thread's own vector store, created on demand
as OpenAI does (it expires 7 days after its last use)."""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection

from threadloom.domain.errors import InvalidRequest, NotFound
from threadloom.domain.vector_store import CreateVectorStoreRequest, ExpiresAfter, chunking_wire
from threadloom.services.files import check_file_ids_exist, refuse_unsearchable
from threadloom.services.vector_stores import attach_files, insert_vector_store
from threadloom.store import vector_stores as vs_queries
from threadloom.store.objects import thread_store, vector_store_store

MAX_CODE_FILES = 20
THREAD_STORE_EXPIRY = ExpiresAfter(anchor="last_active_at", days=7)


class ToolResourceLinker:
    def __init__(self, embedding_model: str, wake_ingestion: Callable[[], None], code_problem: str | None = None):
        self.embedding_model = embedding_model
        self.wake_ingestion = wake_ingestion
        # Why code_interpreter cannot run here (no sandbox), or None.
        self.code_problem = code_problem

    def check_tools(self, tools: list[dict], param: str = "tools") -> None:
        """A built-in tool this server cannot run is refused, never accepted and ignored."""
        if self.code_problem and any(t["type"] == "code_interpreter" for t in tools):
            raise InvalidRequest(
                f"The code_interpreter tool is not available on this server: {self.code_problem}",
                param=param,
                code="unsupported_tool",
            )

    def resolve(self, conn: Connection, wire: dict, param: str = "tool_resources") -> dict:
        """The tool resources to store: helpers turned into stores, every id checked."""
        out = dict(wire)
        search = wire.get("file_search")
        if search is not None:
            ids = list(search.get("vector_store_ids") or [])
            for i, helper in enumerate(search.get("vector_stores") or []):
                req = CreateVectorStoreRequest(
                    file_ids=helper.file_ids, chunking_strategy=helper.chunking_strategy, metadata=helper.metadata
                )
                body = insert_vector_store(
                    conn, req, self.embedding_model, param=f"{param}.file_search.vector_stores[{i}].file_ids"
                )
                ids.append(body["id"])
            for store_id in ids:
                if vector_store_store.find(conn, store_id) is None:
                    raise NotFound.of("vector store", store_id)
            out["file_search"] = {"vector_store_ids": ids}
        code = wire.get("code_interpreter")
        if code is not None:
            check_file_ids_exist(conn, code["file_ids"], f"{param}.code_interpreter.file_ids")
        return out

    def attach(self, conn: Connection, thread: dict, messages: list[dict]) -> dict:
        """Add the files attached to `messages` to the thread's tool resources; the
        thread's body (stored when it changed)."""
        search_files: list[str] = []
        code_files: list[str] = []
        for message in messages:
            for attachment in message.get("attachments") or []:
                kinds = {tool["type"] for tool in attachment.get("tools") or []}
                if "file_search" in kinds:
                    search_files.append(attachment["file_id"])
                if "code_interpreter" in kinds:
                    code_files.append(attachment["file_id"])
        every = list(dict.fromkeys(search_files + code_files))
        if not every:
            return thread
        check_file_ids_exist(conn, every, "attachments")
        resources = dict(thread.get("tool_resources") or {})
        if code_files:
            current = list((resources.get("code_interpreter") or {}).get("file_ids") or [])
            merged = list(dict.fromkeys(current + code_files))
            if len(merged) > MAX_CODE_FILES:
                raise InvalidRequest(
                    f"A thread can hold at most {MAX_CODE_FILES} code_interpreter files; these attachments would make "
                    f"{len(merged)}.",
                    param="attachments",
                    code="array_above_max_length",
                )
            resources["code_interpreter"] = {"file_ids": merged}
        if search_files:
            files = check_file_ids_exist(conn, list(dict.fromkeys(search_files)), "attachments")
            refuse_unsearchable(files, "attachments")
            store_ids = list((resources.get("file_search") or {}).get("vector_store_ids") or [])
            if store_ids:
                store_id = store_ids[0]
            else:
                store = insert_vector_store(
                    conn,
                    CreateVectorStoreRequest(name=f"vector store for {thread['id']}", expires_after=THREAD_STORE_EXPIRY),
                    self.embedding_model,
                )
                store_id = store["id"]
                resources["file_search"] = {"vector_store_ids": [store_id]}
            held = set()
            # Files already in the store stay as they are; only new ones are queued.
            for file_id in dict.fromkeys(search_files):
                if vs_queries.file_status(conn, store_id, file_id) is not None:
                    held.add(file_id)
            new = [(fid, chunking_wire(None), None) for fid in dict.fromkeys(search_files) if fid not in held]
            if new:
                attach_files(conn, store_id, new, thread["created_at"])
                vs_queries.refresh_store(conn, store_id)
        updated = dict(thread, tool_resources=resources)
        thread_store.put(conn, updated)
        return updated
