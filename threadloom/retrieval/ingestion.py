"""Ingestion: background work that turns a vector store file `in_progress` into searchable
chunks — parse, chunk, embed, index — and ends it `completed` or `failed`.

The queue is the store itself: rows `in_progress`, claimed with a lease (renewed while the
work goes on), so a server that dies mid-file leaves it to be picked up again by the next
one, and several servers on one PostgreSQL share the work. Parsing and chunking run in a
thread, embedding in the embedder's thread: the event loop only waits.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from threadloom.retrieval.chunking import chunk_text
from threadloom.retrieval.embedders import Embedder, EmbeddingError
from threadloom.retrieval.parsing import InvalidFile, UnsupportedFile, extract_text
from threadloom.store import vector_stores as vs_queries
from threadloom.store.database import Database
from threadloom.store.objects import file_store, vector_store_file_store

log = logging.getLogger("threadloom.ingestion")

LEASE_SECONDS = 15
POLL_SECONDS = 2.0  # also how soon files another server left behind are picked up


class Failed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class IngestionWorker:
    def __init__(self, db: Database, embedder: Embedder, owner: str):
        self.db = db
        self.embedder = embedder
        self.owner = owner
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            await self.db.transact(lambda conn: vs_queries.release_file_leases(conn, self.owner))

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_one():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingestion failed")
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()

    async def run_one(self) -> bool:
        """Ingest one pending file; False when there was none."""
        now = int(time.time())
        claimed = await self.db.transact(lambda conn: vs_queries.claim_pending_file(conn, self.owner, now, now + LEASE_SECONDS))
        if claimed is None:
            return False
        seq, body = claimed
        renew = asyncio.get_running_loop().create_task(self._renew())
        try:
            try:
                rows = await self._process(body)
            finally:
                renew.cancel()
            await self._finish(seq, body, "completed", rows=rows)
        except Failed as exc:
            await self._finish(seq, body, "failed", error={"code": exc.code, "message": exc.message})
        except Exception as exc:
            log.exception("ingesting %s into %s failed", body["id"], body["vector_store_id"])
            await self._finish(seq, body, "failed", error={"code": "server_error", "message": f"internal error: {exc.__class__.__name__}"})
        return True

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            until = int(time.time()) + LEASE_SECONDS
            await self.db.transact(lambda conn: vs_queries.renew_file_leases(conn, self.owner, until), durable=False)

    async def _process(self, body: dict) -> list[tuple[str, bytes]]:
        file_id = body["id"]

        def read(conn):
            return file_store.find(conn, file_id), vs_queries.read_file_bytes(conn, file_id)

        file, data = await self.db.read_off_loop(read)
        if file is None:
            raise Failed("invalid_file", f"The file {file_id} was deleted.")
        static = body["chunking_strategy"]["static"]

        def parse_and_chunk():
            text = extract_text(data, file["filename"])
            return chunk_text(text, static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])

        try:
            chunks = await asyncio.to_thread(parse_and_chunk)
        except UnsupportedFile as exc:
            raise Failed("unsupported_file", str(exc)) from None
        except InvalidFile as exc:
            raise Failed("invalid_file", str(exc)) from None
        if not chunks:
            raise Failed("invalid_file", f"The file '{file['filename']}' contains no text to index.")
        texts = [c.text for c in chunks]
        try:
            vectors = await self.embedder.embed(texts)
        except EmbeddingError as exc:
            raise Failed("server_error", f"The embedding model failed: {exc}") from None
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return [(text, vectors[i].tobytes()) for i, text in enumerate(texts)]

    async def _finish(self, seq: int, body: dict, status: str, *, rows=None, error=None) -> None:
        store_id, file_id = body["vector_store_id"], body["id"]

        def write(conn):
            row = vs_queries.file_row(conn, store_id, file_id)
            current = vector_store_file_store.find(conn, file_id, vector_store_id=store_id)
            # Deleted, cancelled or queued anew while this ran: the work is dropped.
            if row is None or row[0] != seq or current is None or current["status"] != "in_progress":
                return False
            batch_id = row[1]
            done = dict(current, status=status, last_error=error)
            usage = 0
            if rows:
                vs_queries.delete_chunks(conn, store_id, file_id)
                vs_queries.insert_chunks(conn, store_id, file_id, rows)
                usage = sum(len(text.encode()) + len(emb) for text, emb in rows)
                vs_queries.bump_version(conn, store_id)
            done["usage_bytes"] = usage
            vs_queries.set_file_status(conn, done, usage_bytes=usage)
            vs_queries.refresh_store(conn, store_id)
            if batch_id:
                vs_queries.refresh_batch(conn, batch_id)
            return True

        await self.db.transact(write)
