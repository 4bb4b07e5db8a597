"""Queries of files and vector stores beyond plain object reads: file bytes in parts, a
store's counts and usage, its chunks, and the durable ingestion queue (vector store files
`in_progress`, claimed with a lease like runs)."""

from __future__ import annotations

from typing import Iterable, Iterator

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update

from threadloom.domain.vector_store import batch_status, counts_of, store_status
from threadloom.store import tables
from threadloom.store.objects import file_batch_store, vector_store_file_store, vector_store_store

_parts, _stores, _files = tables.file_parts, tables.vector_stores, tables.vector_store_files
_chunks, _batches = tables.vector_store_chunks, tables.vector_store_file_batches

# -- file bytes ----------------------------------------------------------------

PART_BYTES = 4 * 1024 * 1024


def write_file_parts(conn: Connection, file_id: str, parts: Iterable[bytes]) -> None:
    for i, data in enumerate(parts):
        conn.execute(insert(_parts), {"file_id": file_id, "part": i, "data": data})


def file_part_count(conn: Connection, file_id: str) -> int:
    return conn.execute(select(func.count()).select_from(_parts).where(_parts.c.file_id == file_id)).scalar() or 0


def read_file_part(conn: Connection, file_id: str, part: int) -> bytes | None:
    stmt = select(_parts.c.data).where(_parts.c.file_id == file_id, _parts.c.part == part)
    return conn.execute(stmt).scalar()


def read_file_bytes(conn: Connection, file_id: str) -> bytes:
    rows = conn.execute(select(_parts.c.data).where(_parts.c.file_id == file_id).order_by(_parts.c.part)).all()
    return b"".join(bytes(row[0]) for row in rows)


def delete_file_parts(conn: Connection, file_id: str) -> None:
    conn.execute(delete(_parts).where(_parts.c.file_id == file_id))


# -- a store's files, counts and usage ------------------------------------------


def store_ids_holding(conn: Connection, file_id: str) -> list[str]:
    return list(conn.execute(select(_files.c.vector_store_id).where(_files.c.id == file_id)).scalars())


def refresh_store(conn: Connection, vector_store_id: str) -> dict | None:
    """Recount the store's files and usage into its body (in the caller's transaction)."""
    body = vector_store_store.find(conn, vector_store_id)
    if body is None:
        return None
    rows = conn.execute(
        select(_files.c.status, func.count(), func.coalesce(func.sum(_files.c.usage_bytes), 0))
        .where(_files.c.vector_store_id == vector_store_id)
        .group_by(_files.c.status)
    ).all()
    counts = counts_of({status: n for status, n, _ in rows})
    body = dict(body, file_counts=counts, usage_bytes=int(sum(usage for _, _, usage in rows)))
    body["status"] = store_status(body, counts)
    vector_store_store.put(conn, body)
    return body


def refresh_batch(conn: Connection, batch_id: str) -> dict | None:
    body = file_batch_store.find(conn, batch_id)
    if body is None:
        return None
    rows = conn.execute(
        select(_files.c.status, func.count()).where(_files.c.batch_id == batch_id).group_by(_files.c.status)
    ).all()
    counts = counts_of(dict(rows))
    body = dict(body, file_counts=counts)
    body["status"] = batch_status(body, counts)
    file_batch_store.put(conn, body)
    return body


def bump_version(conn: Connection, vector_store_id: str) -> None:
    conn.execute(update(_stores).where(_stores.c.id == vector_store_id).values(version=_stores.c.version + 1))


_VERSION = select(_stores.c.version, _stores.c.embedding_model, _stores.c.body).where(_stores.c.id == bindparam("id"))


def store_version(conn: Connection, vector_store_id: str) -> tuple[int, str, dict] | None:
    """(version, embedding model, body) of a store, or None."""
    if "\x00" in vector_store_id:
        return None
    row = conn.execute(_VERSION, {"id": vector_store_id}).first()
    return (row[0], row[1], row[2]) if row else None


def set_file_status(conn: Connection, body: dict, usage_bytes: int | None = None) -> None:
    columns = {"status": body["status"], "owner": None, "lease_until": None}
    if usage_bytes is not None:
        columns["usage_bytes"] = usage_bytes
    vector_store_file_store.put(conn, body, **columns)


def file_attributes(conn: Connection, vector_store_id: str) -> dict[str, tuple[dict, str]]:
    """file id -> (attributes, filename) of the store's completed files."""
    stmt = (
        select(_files.c.id, _files.c.body, tables.files.c.body)
        .join(tables.files, tables.files.c.id == _files.c.id)
        .where(_files.c.vector_store_id == vector_store_id, _files.c.status == "completed")
    )
    return {fid: (vs_body.get("attributes") or {}, file_body["filename"]) for fid, vs_body, file_body in conn.execute(stmt)}


# -- chunks ---------------------------------------------------------------------


def insert_chunks(conn: Connection, vector_store_id: str, file_id: str, rows: list[tuple[str, bytes]]) -> None:
    if rows:
        conn.execute(
            insert(_chunks),
            [
                {"vector_store_id": vector_store_id, "file_id": file_id, "position": i, "text": text, "embedding": emb}
                for i, (text, emb) in enumerate(rows)
            ],
        )


def delete_chunks(conn: Connection, vector_store_id: str, file_id: str | None = None) -> None:
    where = [_chunks.c.vector_store_id == vector_store_id]
    if file_id is not None:
        where.append(_chunks.c.file_id == file_id)
    conn.execute(delete(_chunks).where(*where))


def iter_chunks(conn: Connection, vector_store_id: str, batch: int = 5000) -> Iterator[list[tuple]]:
    """(file_id, position, text, embedding) rows of the store, in batches, by insertion order."""
    last = 0
    while True:
        rows = conn.execute(
            select(_chunks.c.seq, _chunks.c.file_id, _chunks.c.position, _chunks.c.text, _chunks.c.embedding)
            .where(_chunks.c.vector_store_id == vector_store_id, _chunks.c.seq > last)
            .order_by(_chunks.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        yield [row[1:] for row in rows]


def file_chunk_texts(conn: Connection, vector_store_id: str, file_id: str) -> list[str]:
    stmt = (
        select(_chunks.c.text)
        .where(_chunks.c.vector_store_id == vector_store_id, _chunks.c.file_id == file_id)
        .order_by(_chunks.c.position)
    )
    return list(conn.execute(stmt).scalars())


# -- the ingestion queue -----------------------------------------------------------


def claim_pending_file(conn: Connection, owner: str, now: int, lease_until: int) -> tuple[int, dict] | None:
    """One `in_progress` store file nobody holds (or whose holder's lease lapsed), now this
    process's, with its row's seq (a file queued anew gets a new row). SKIP LOCKED keeps two
    PostgreSQL servers off the same row."""
    stmt = (
        select(_files.c.seq, _files.c.body)
        .where(_files.c.status == "in_progress", or_(_files.c.lease_until.is_(None), _files.c.lease_until < now))
        .order_by(_files.c.seq)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    row = conn.execute(stmt).first()
    if row is None:
        return None
    conn.execute(update(_files).where(_files.c.seq == row[0]).values(owner=owner, lease_until=lease_until))
    return row[0], row[1]


def file_row(conn: Connection, vector_store_id: str, file_id: str) -> tuple[int, str | None] | None:
    """(seq, batch id) of a store's file row."""
    stmt = select(_files.c.seq, _files.c.batch_id).where(_files.c.vector_store_id == vector_store_id, _files.c.id == file_id)
    row = conn.execute(stmt).first()
    return (row[0], row[1]) if row else None


def renew_file_leases(conn: Connection, owner: str, lease_until: int) -> None:
    conn.execute(
        update(_files).where(_files.c.owner == owner, _files.c.status == "in_progress").values(lease_until=lease_until)
    )


def release_file_leases(conn: Connection, owner: str) -> None:
    """A server stopping hands its unfinished files back to the queue at once."""
    conn.execute(
        update(_files).where(_files.c.owner == owner, _files.c.status == "in_progress").values(owner=None, lease_until=None)
    )


def file_status(conn: Connection, vector_store_id: str, file_id: str) -> str | None:
    stmt = select(_files.c.status).where(_files.c.vector_store_id == vector_store_id, _files.c.id == file_id)
    return conn.execute(stmt).scalar()


def pending_file_count(conn: Connection, vector_store_ids: list[str]) -> int:
    stmt = select(func.count()).select_from(_files).where(
        _files.c.vector_store_id.in_(vector_store_ids), _files.c.status == "in_progress"
    )
    return conn.execute(stmt).scalar() or 0


def due_file_ids(conn: Connection, now: int) -> list[str]:
    files = tables.files
    return list(conn.execute(select(files.c.id).where(files.c.expires_at.is_not(None), files.c.expires_at <= now)).scalars())


def expire_due_stores(conn: Connection, now: int) -> None:
    """Stores past their expires_at become `expired`; the column is cleared so a store is
    expired once (its body keeps the moment)."""
    due = conn.execute(select(_stores.c.id).where(_stores.c.expires_at.is_not(None), _stores.c.expires_at <= now)).scalars().all()
    for store_id in due:
        body = vector_store_store.get(conn, store_id)
        vector_store_store.put(conn, dict(body, status="expired"), expires_at=None)
