"""Vector stores, their files and file batches, and search over them.

Adding a file commits it `in_progress` and returns at once; the ingestion worker parses,
chunks and embeds it in the background (retrieval/ingestion.py)."""

from __future__ import annotations

import time

from sqlalchemy import Connection

from threadloom.domain.errors import InvalidRequest, NotFound, Unavailable
from threadloom.domain.metadata import check_metadata
from threadloom.domain.vector_store import (
    FILE_STATUSES,
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    SearchRequest,
    UpdateVectorStoreFileRequest,
    UpdateVectorStoreRequest,
    check_attributes,
    chunking_wire,
    expires_at,
    new_file_batch,
    new_vector_store,
    new_vector_store_file,
)
from threadloom.retrieval.embedders import Embedder, EmbeddingError
from threadloom.retrieval.filters import matches
from threadloom.retrieval.index import IndexCache
from threadloom.retrieval.keyword import terms
from threadloom.services.files import check_file_ids_exist, refuse_unsearchable
from threadloom.store import vector_stores as vs_queries
from threadloom.store.database import Database
from threadloom.store.objects import file_batch_store, vector_store_file_store, vector_store_store
from threadloom.store.pagination import PageQuery, page_wire

ACTIVITY_GRANULARITY = 60  # seconds: last_active_at is rewritten at most once a minute


class EmbeddingUnavailable(Unavailable):
    pass


def attach_files(
    conn: Connection, vector_store_id: str, specs: list[tuple[str, dict, dict | None]], now: int, batch_id: str | None = None
) -> list[dict]:
    """Queue files for ingestion into a store: (file id, chunking, attributes) each. A file
    already in the store is queued again with the new settings."""
    bodies = []
    for file_id, chunking, attributes in specs:
        vector_store_file_store.delete(conn, file_id, vector_store_id=vector_store_id)
        body = new_vector_store_file(vector_store_id, file_id, chunking, attributes, now)
        vector_store_file_store.insert(conn, body, vector_store_id=vector_store_id, status="in_progress", batch_id=batch_id, usage_bytes=0)
        vs_queries.delete_chunks(conn, vector_store_id, file_id)
        bodies.append(body)
    if specs:
        vs_queries.bump_version(conn, vector_store_id)
    return bodies


def insert_vector_store(conn: Connection, req: CreateVectorStoreRequest, embedding_model: str, param: str = "file_ids") -> dict:
    """Create a store (and queue its files) in the caller's transaction."""
    check_metadata(req.metadata)
    chunking = chunking_wire(req.chunking_strategy)
    files = check_file_ids_exist(conn, list(dict.fromkeys(req.file_ids or [])), param)
    refuse_unsearchable(files, param)
    body = new_vector_store(req)
    vector_store_store.insert(conn, body, expires_at=body["expires_at"], embedding_model=embedding_model, version=0)
    attach_files(conn, body["id"], [(f["id"], chunking, None) for f in files], body["created_at"])
    return vs_queries.refresh_store(conn, body["id"])


def delete_vector_store(conn: Connection, vector_store_id: str) -> None:
    if not vector_store_store.delete(conn, vector_store_id):
        raise NotFound.of("vector store", vector_store_id)
    vector_store_file_store.delete_where(conn, vector_store_id=vector_store_id)
    file_batch_store.delete_where(conn, vector_store_id=vector_store_id)
    vs_queries.delete_chunks(conn, vector_store_id)


def _filter_status(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in FILE_STATUSES:
        raise InvalidRequest(
            f"Invalid value: '{value}'. Supported values are: {', '.join(repr(s) for s in FILE_STATUSES)}.",
            param="filter",
            code="invalid_value",
        )
    return value


class VectorStoreService:
    def __init__(self, db: Database, embedder: Embedder, indexes: IndexCache, wake_ingestion):
        self.db = db
        self.embedder = embedder
        self.indexes = indexes
        self.wake_ingestion = wake_ingestion

    # -- stores ----------------------------------------------------------------

    async def create(self, req: CreateVectorStoreRequest) -> dict:
        body = await self.db.transact(lambda conn: insert_vector_store(conn, req, self.embedder.model))
        if body["file_counts"]["in_progress"]:
            self.wake_ingestion()
        return body

    async def get(self, vector_store_id: str) -> dict:
        return await self.db.query(lambda conn: vector_store_store.get(conn, vector_store_id))

    async def list(self, query: PageQuery) -> dict:
        data, has_more = await self.db.query(lambda conn: vector_store_store.page(conn, query))
        return page_wire(data, has_more)

    async def modify(self, vector_store_id: str, req: UpdateVectorStoreRequest) -> dict:
        def change(conn):
            body = dict(vector_store_store.get(conn, vector_store_id))
            fields = req.model_fields_set
            if "name" in fields:
                body["name"] = req.name or ""
            if "metadata" in fields:
                body["metadata"] = check_metadata(req.metadata) or {}
            if "expires_after" in fields:
                body.pop("expires_after", None)
                if req.expires_after:
                    body["expires_after"] = req.expires_after.model_dump()
                body["expires_at"] = expires_at(body.get("expires_after"), body["last_active_at"] or body["created_at"])
            vector_store_store.put(conn, body, expires_at=body["expires_at"])
            return body

        return await self.db.transact(change)

    async def delete(self, vector_store_id: str) -> dict:
        await self.db.transact(lambda conn: delete_vector_store(conn, vector_store_id))
        self.indexes.forget(vector_store_id)
        return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}

    # -- files -----------------------------------------------------------------

    async def create_file(self, vector_store_id: str, req: CreateVectorStoreFileRequest) -> dict:
        chunking = chunking_wire(req.chunking_strategy)
        attributes = check_attributes(req.attributes)

        def add(conn):
            _live_store(conn, vector_store_id)
            files = check_file_ids_exist(conn, [req.file_id], "file_id")
            refuse_unsearchable(files, "file_id")
            body = attach_files(conn, vector_store_id, [(req.file_id, chunking, attributes)], int(time.time()))[0]
            vs_queries.refresh_store(conn, vector_store_id)
            return body

        body = await self.db.transact(add)
        self.wake_ingestion()
        return body

    async def list_files(self, vector_store_id: str, query: PageQuery, status: str | None, batch_id: str | None = None) -> dict:
        where = {"vector_store_id": vector_store_id}
        if _filter_status(status):
            where["status"] = status
        if batch_id is not None:
            where["batch_id"] = batch_id

        def page(conn):
            vector_store_store.get(conn, vector_store_id)
            if batch_id is not None:
                file_batch_store.get(conn, batch_id, vector_store_id=vector_store_id)
            return vector_store_file_store.page(conn, query, **where)

        data, has_more = await self.db.query(page)
        return page_wire(data, has_more)

    async def get_file(self, vector_store_id: str, file_id: str) -> dict:
        def find(conn):
            vector_store_store.get(conn, vector_store_id)
            return vector_store_file_store.get(conn, file_id, vector_store_id=vector_store_id)

        return await self.db.query(find)

    async def update_file(self, vector_store_id: str, file_id: str, req: UpdateVectorStoreFileRequest) -> dict:
        attributes = check_attributes(req.attributes)

        def change(conn):
            vector_store_store.get(conn, vector_store_id)
            body = dict(vector_store_file_store.get(conn, file_id, vector_store_id=vector_store_id), attributes=attributes or {})
            vector_store_file_store.put(conn, body)
            return body

        return await self.db.transact(change)

    async def delete_file(self, vector_store_id: str, file_id: str) -> dict:
        def remove(conn):
            vector_store_store.get(conn, vector_store_id)
            if not vector_store_file_store.delete(conn, file_id, vector_store_id=vector_store_id):
                raise NotFound.of("file", file_id)
            vs_queries.delete_chunks(conn, vector_store_id, file_id)
            vs_queries.bump_version(conn, vector_store_id)
            vs_queries.refresh_store(conn, vector_store_id)

        await self.db.transact(remove)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def file_content(self, vector_store_id: str, file_id: str) -> dict:
        def read(conn):
            vector_store_store.get(conn, vector_store_id)
            vector_store_file_store.get(conn, file_id, vector_store_id=vector_store_id)
            return vs_queries.file_chunk_texts(conn, vector_store_id, file_id)

        texts = await self.db.query(read)
        return {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": text} for text in texts],
            "has_more": False,
            "next_page": None,
        }

    # -- batches ---------------------------------------------------------------

    async def create_batch(self, vector_store_id: str, req: CreateFileBatchRequest) -> dict:
        if (req.file_ids is None) == (req.files is None):
            raise InvalidRequest(
                "Exactly one of 'file_ids' or 'files' must be given.", param="file_ids", code="invalid_value"
            )
        if req.file_ids is not None:
            chunking = chunking_wire(req.chunking_strategy)
            attributes = check_attributes(req.attributes)
            specs = [(fid, chunking, attributes) for fid in dict.fromkeys(req.file_ids)]
            param = "file_ids"
        else:
            specs = {}
            for i, item in enumerate(req.files):
                specs[item.file_id] = (
                    item.file_id,
                    chunking_wire(item.chunking_strategy, f"files[{i}].chunking_strategy"),
                    check_attributes(item.attributes, f"files[{i}].attributes"),
                )
            specs = list(specs.values())
            param = "files"

        def add(conn):
            _live_store(conn, vector_store_id)
            files = check_file_ids_exist(conn, [s[0] for s in specs], param)
            refuse_unsearchable(files, param)
            now = int(time.time())
            batch = new_file_batch(vector_store_id, now)
            file_batch_store.insert(conn, batch, vector_store_id=vector_store_id)
            attach_files(conn, vector_store_id, specs, now, batch_id=batch["id"])
            vs_queries.refresh_store(conn, vector_store_id)
            return vs_queries.refresh_batch(conn, batch["id"])

        batch = await self.db.transact(add)
        self.wake_ingestion()
        return batch

    async def get_batch(self, vector_store_id: str, batch_id: str) -> dict:
        def find(conn):
            vector_store_store.get(conn, vector_store_id)
            return file_batch_store.get(conn, batch_id, vector_store_id=vector_store_id)

        return await self.db.query(find)

    async def cancel_batch(self, vector_store_id: str, batch_id: str) -> dict:
        """Files of the batch not yet ingested end `cancelled` now; the worker drops its
        work on one when it sees that."""

        def cancel(conn):
            vector_store_store.get(conn, vector_store_id)
            batch = file_batch_store.get(conn, batch_id, vector_store_id=vector_store_id)
            if batch["status"] != "in_progress":
                raise InvalidRequest(
                    f"Cannot cancel a vector store file batch with status '{batch['status']}'.", param=None
                )
            pending, _ = vector_store_file_store.page(conn, PageQuery(limit=10_000, order="asc"), batch_id=batch_id, status="in_progress")
            for body in pending:
                vs_queries.set_file_status(conn, dict(body, status="cancelled"))
            file_batch_store.put(conn, dict(batch, status="cancelled"))
            vs_queries.refresh_store(conn, vector_store_id)
            return vs_queries.refresh_batch(conn, batch_id)

        return await self.db.transact(cancel)

    # -- search ----------------------------------------------------------------

    async def search(self, vector_store_id: str, req: SearchRequest) -> dict:
        queries = [req.query] if isinstance(req.query, str) else list(req.query)
        if not any(q.strip() for q in queries):
            raise InvalidRequest("Invalid 'query': the query must not be empty.", param="query", code="invalid_value")
        if req.rewrite_query:
            queries = [rewrite_query(q) for q in queries]
        ranking = req.ranking_options
        hits = await self.search_stores(
            [vector_store_id],
            queries,
            limit=req.max_num_results,
            threshold=ranking.score_threshold if ranking else 0.0,
            hybrid=not (ranking and ranking.ranker == "none"),
            filters=req.filters,
        )
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [
                {
                    "file_id": hit["file_id"],
                    "filename": hit["filename"],
                    "score": hit["score"],
                    "attributes": hit["attributes"],
                    "content": [{"type": "text", "text": hit["text"]}],
                }
                for hit in hits
            ],
            "has_more": False,
            "next_page": None,
        }

    async def search_stores(
        self, vector_store_ids: list[str], queries: list[str], *, limit: int, threshold: float, hybrid: bool, filters=None
    ) -> list[dict]:
        """The best chunks across stores: dicts of file_id, filename, score, attributes, text."""
        now = int(time.time())

        def read(conn):
            found = []
            for store_id in vector_store_ids:
                row = vs_queries.store_version(conn, store_id)
                if row is None:
                    raise NotFound.of("vector store", store_id)
                version, model, body = row
                if body["status"] == "expired":
                    raise InvalidRequest(f"Vector store {store_id} has expired.", param=None, code="vector_store_expired")
                if model != self.embedder.model:
                    raise InvalidRequest(
                        f"Vector store {store_id} was embedded with '{model}', but this server embeds with "
                        f"'{self.embedder.model}'; search it with the server configured for '{model}'.",
                        param=None,
                        code="embedding_model_mismatch",
                    )
                found.append((store_id, version, body, vs_queries.file_attributes(conn, store_id)))
            return found

        stores = await self.db.query(read)
        try:
            vectors = await self.embedder.embed(queries)
        except EmbeddingError as exc:
            raise EmbeddingUnavailable(f"The embedding model could not embed the query: {exc}") from None
        hits = []
        for store_id, version, body, files in stores:
            index = await self.indexes.get(store_id, version)
            allowed = {fid for fid, (attrs, _) in files.items() if matches(filters, attrs)} if filters is not None else set(files)
            for hit in index.rank(queries, vectors, allowed_files=allowed, limit=limit, threshold=threshold, hybrid=hybrid):
                attrs, filename = files[hit.file_id]
                hits.append({"file_id": hit.file_id, "filename": filename, "score": hit.score, "attributes": attrs, "text": hit.text})
            if body.get("last_active_at") is None or now - body["last_active_at"] >= ACTIVITY_GRANULARITY:
                await self.db.transact(lambda conn, sid=store_id: _touch(conn, sid, now), durable=False)
        hits.sort(key=lambda h: -h["score"])
        return hits[:limit]

    async def pending_files(self, vector_store_ids: list[str]) -> int:
        return await self.db.query(lambda conn: vs_queries.pending_file_count(conn, vector_store_ids))


def _live_store(conn: Connection, vector_store_id: str) -> dict:
    body = vector_store_store.get(conn, vector_store_id)
    if body["status"] == "expired":
        raise InvalidRequest(f"Vector store {vector_store_id} has expired.", param=None, code="vector_store_expired")
    return body


def _touch(conn: Connection, vector_store_id: str, now: int) -> None:
    body = vector_store_store.find(conn, vector_store_id)
    if body is None:
        return
    body = dict(body, last_active_at=now)
    body["expires_at"] = expires_at(body.get("expires_after"), now)
    vector_store_store.put(conn, body, expires_at=body["expires_at"])


def rewrite_query(query: str) -> str:
    """OpenAI rewrites a natural-language question for search with a model; this server
    keeps its content words (drops question words and stopwords), which is what the
    keyword half of the search uses anyway."""
    kept = terms(query)
    return " ".join(kept) if kept else query.strip()
