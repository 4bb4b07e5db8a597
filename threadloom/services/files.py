"""Files: upload, read, list, delete, download. Bytes are kept in the database in parts,
so every server sharing it can serve any file."""

from __future__ import annotations

import time
from typing import AsyncIterator

from sqlalchemy import Connection

from threadloom.domain.errors import InvalidRequest, NotFound
from threadloom.domain.file import check_upload, file_expiry, new_file
from threadloom.store import vector_stores as vs_queries
from threadloom.store.database import Database
from threadloom.store.objects import file_store, vector_store_file_store
from threadloom.store.pagination import PageQuery, page_wire


def remove_file(conn: Connection, file_id: str) -> list[str]:
    """Delete a file and take it out of every vector store that holds it; the stores whose
    search changed."""
    if not file_store.delete(conn, file_id):
        raise NotFound.of("file", file_id)
    vs_queries.delete_file_parts(conn, file_id)
    stores = vs_queries.store_ids_holding(conn, file_id)
    for store_id in stores:
        vector_store_file_store.delete(conn, file_id, vector_store_id=store_id)
        vs_queries.delete_chunks(conn, store_id, file_id)
        vs_queries.bump_version(conn, store_id)
        vs_queries.refresh_store(conn, store_id)
    return stores


class FileService:
    def __init__(self, db: Database, max_bytes: int):
        self.db = db
        self.max_bytes = max_bytes

    async def create(self, filename: str, purpose: str, parts: list[bytes], expires_after: dict | None) -> dict:
        size = sum(len(p) for p in parts)
        check_upload(filename, purpose, size, self.max_bytes)
        now = int(time.time())
        body = new_file(filename, purpose, size, file_expiry(purpose, expires_after, now), now)

        def insert(conn):
            file_store.insert(conn, body, purpose=purpose, expires_at=body.get("expires_at"))
            vs_queries.write_file_parts(conn, body["id"], parts)

        await self.db.transact(insert)
        return body

    async def get(self, file_id: str) -> dict:
        return await self.db.query(lambda conn: file_store.get(conn, file_id))

    async def list(self, query: PageQuery, purpose: str | None) -> dict:
        where = {"purpose": purpose} if purpose else {}
        data, has_more = await self.db.query(lambda conn: file_store.page(conn, query, **where))
        return page_wire(data, has_more)

    async def delete(self, file_id: str) -> tuple[dict, list[str]]:
        stores = await self.db.transact(lambda conn: remove_file(conn, file_id))
        return {"id": file_id, "object": "file", "deleted": True}, stores

    async def store_output(self, filename: str, data: bytes) -> dict:
        """A file code_interpreter wrote (`purpose: assistants_output`)."""
        body = new_file(filename, "assistants_output", len(data), None)

        def insert(conn):
            file_store.insert(conn, body, purpose="assistants_output", expires_at=None)
            vs_queries.write_file_parts(conn, body["id"], [data[i : i + vs_queries.PART_BYTES] for i in range(0, len(data), vs_queries.PART_BYTES)] or [b""])

        await self.db.transact(insert)
        return body

    async def read_many(self, file_ids: list[str]) -> dict[str, bytes]:
        """filename -> bytes of the files that still exist (for a code session's /mnt/data)."""

        def read(conn):
            out = {}
            for file_id in file_ids:
                body = file_store.find(conn, file_id)
                if body is not None:
                    out[body["filename"]] = vs_queries.read_file_bytes(conn, file_id)
            return out

        return await self.db.read_off_loop(read) if file_ids else {}

    async def content(self, file_id: str) -> tuple[dict, AsyncIterator[bytes]]:
        """The file, and its bytes part by part (one part in memory at a time)."""

        def head(conn):
            return file_store.get(conn, file_id), vs_queries.file_part_count(conn, file_id)

        body, count = await self.db.query(head)

        async def parts():
            for i in range(count):
                data = await self.db.query(lambda conn: vs_queries.read_file_part(conn, file_id, i))
                if data is None:
                    return  # deleted while it was being read
                yield bytes(data)

        return body, parts()


def check_file_ids_exist(conn: Connection, file_ids: list[str], param: str) -> list[dict]:
    """The files, or OpenAI's 404 for the first id that names none."""
    bodies = []
    for file_id in file_ids:
        body = file_store.find(conn, file_id)
        if body is None:
            raise NotFound.of("file", file_id)
        bodies.append(body)
    return bodies


def refuse_unsearchable(files: list[dict], param: str) -> None:
    from threadloom.domain.file import SEARCHABLE_PURPOSES

    for body in files:
        if body["purpose"] not in SEARCHABLE_PURPOSES:
            raise InvalidRequest(
                f"Invalid '{param}': file {body['id']} has purpose '{body['purpose']}'; only files with purpose "
                f"'assistants' or 'user_data' can be added to vector stores.",
                param=param,
                code="invalid_value",
            )
