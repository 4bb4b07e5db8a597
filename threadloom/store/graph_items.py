"""LangGraph's store (BaseStore) over threadloom's database: the `/store` API and the
user's graphs (`runtime.store`) read and write the same `graph_store_items` rows.

A namespace is kept as its labels joined by "." (a label cannot hold a dot), so a
namespace prefix is a LIKE in SQL. Filters on top-level keys (equality and $eq $ne $gt
$gte $lt $lte) run in SQL, comparing as JSON does (a string is not a number, true is not
1; ranges compare numbers); a filter on nested objects or lists is applied here, over
what the rest of the query kept. Items with a TTL disappear when it passes, and their
rows go at the next write to their namespace.

With a vector index (langgraph.json's `store.index`), a put embeds the value's indexed
fields with the server's embedder and keeps the vectors on the item's row; a search
`query` ranks the items the filters keep by their best field's cosine similarity, items
without vectors last. Without one, a `query` ranks by the share of its words found in the
item's value.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import numpy as np
import orjson
from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from langgraph.store.base.embed import get_text_at_path
from sqlalchemy import Connection, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from threadloom.store import tables
from threadloom.store.json_filters import RANGES, is_number, json_compares, json_differs, json_equals

_items = tables.graph_store_items
_VECTOR = np.float32
_OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}
_WORDS = re.compile(r"\w+")


class RefusedItem(ValueError):
    """A key or value holding a NUL character: PostgreSQL cannot keep one (and a JSON
    value with one breaks every filter over its row), so both databases refuse it."""


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def _check(op: Op) -> None:
    if isinstance(op, (GetOp, PutOp)) and "\x00" in op.key:
        raise RefusedItem("Keys cannot contain NUL characters")
    if isinstance(op, PutOp) and _has_nul(op.value):
        raise RefusedItem("Values cannot contain NUL characters")


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def _when(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)


def _joined(namespace: tuple[str, ...]) -> str:
    return ".".join(namespace)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + ".%"


def _live(now: int):
    return or_(_items.c.expires_at.is_(None), _items.c.expires_at > now)


def _sql_condition(conn: Connection, key: str, wanted):
    """The SQL for one filter entry, or None when only Python can tell."""
    if isinstance(wanted, dict):
        if not wanted or not set(wanted) <= _OPERATORS:
            return None
        parts = [_sql_operator(conn, key, op, operand) for op, operand in wanted.items()]
        return None if any(part is None for part in parts) else and_(*parts)
    return json_equals(conn, _items.c.value, key, wanted)


def _sql_operator(conn: Connection, key: str, op: str, operand):
    if op == "$eq":
        return json_equals(conn, _items.c.value, key, operand)
    if op == "$ne":
        return json_differs(conn, _items.c.value, key, operand)
    return json_compares(conn, _items.c.value, key, op, operand)


def _matches(value, wanted) -> bool:
    """LangGraph's filter semantics, for what SQL could not say."""
    if isinstance(wanted, dict):
        if wanted and set(wanted) <= _OPERATORS:
            return all(_operator(value, op, operand) for op, operand in wanted.items())
        return isinstance(value, dict) and all(_matches(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(wanted)
                and all(_matches(a, b) for a, b in zip(value, wanted)))
    if isinstance(value, bool) or isinstance(wanted, bool):  # as in JSON (and in SQL above): true is not 1
        return value is wanted
    return value == wanted


def _operator(value, op: str, operand) -> bool:
    if op == "$eq":
        return _matches(value, operand)
    if op == "$ne":
        return not _matches(value, operand)
    return is_number(value) and is_number(operand) and RANGES[op](value, operand)


def _score(query: str, value: dict) -> float:
    words = set(w.lower() for w in _WORDS.findall(query))
    if not words:
        return 0.0
    text = set(w.lower() for w in _WORDS.findall(orjson.dumps(value).decode()))
    return len(words & text) / len(words)


def _namespace_matches(namespace: tuple[str, ...], path: tuple[str, ...], kind: str) -> bool:
    if len(namespace) < len(path):
        return False
    pairs = zip(namespace, path) if kind == "prefix" else zip(reversed(namespace), reversed(path))
    return all(want == "*" or have == want for have, want in pairs)


@dataclass(frozen=True)
class StoreIndex:
    """langgraph.json's store.index: which fields of a value are embedded (JSON paths as
    LangGraph's stores take them; `$` is the whole value), by the server's embedder
    (retrieval/embedders.py)."""

    embedder: object
    fields: tuple[str, ...] = ("$",)


class DatabaseStore(BaseStore):
    supports_ttl = True

    def __init__(self, db, ttl_config: dict | None = None, index: StoreIndex | None = None):
        self.db = db
        self.ttl_config = ttl_config  # langgraph.json's store.ttl: items' default TTL, refresh on read
        self.index = index
        self._loop: asyncio.AbstractEventLoop | None = None

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        self._loop = asyncio.get_running_loop()
        ops = list(ops)
        for op in ops:
            _check(op)
        # The embeddings are made before the transaction: no connection waits on the model.
        vectors = await self._embed(ops) if self.index is not None else {}
        # Reads refresh TTLs (a write) unless told not to.
        writes = any(isinstance(op, PutOp) or getattr(op, "refresh_ttl", False) for op in ops)
        run = self.db.transact if writes else self.db.query
        return await run(lambda conn: [self._one(conn, op, vectors.get(i)) for i, op in enumerate(ops)])

    async def _embed(self, ops: list[Op]) -> dict[int, np.ndarray]:
        """Per operation: a put's field vectors (one row each), a search's query vector."""
        texts: list[str] = []
        spans: dict[int, tuple[int, int]] = {}
        for i, op in enumerate(ops):
            if isinstance(op, PutOp) and op.value is not None and op.index is not False:
                fields = op.index if isinstance(op.index, list) else self.index.fields
                found = [text for field in fields for text in get_text_at_path(op.value, field) if text.strip()]
            elif isinstance(op, SearchOp) and op.query:
                found = [op.query]
            else:
                continue
            spans[i] = (len(texts), len(texts) + len(found))
            texts.extend(found)
        if not texts:
            return {}
        rows = np.asarray(await self.index.embedder.embed(texts), dtype=_VECTOR)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return {i: rows[start:end] for i, (start, end) in spans.items() if end > start}

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """For a sync node running in a worker thread: done on the server's loop."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            raise RuntimeError("use the store's async methods (aget, aput, asearch) on the server's event loop")
        return asyncio.run_coroutine_threadsafe(self.abatch(ops), loop).result()

    def _one(self, conn: Connection, op: Op, vectors: np.ndarray | None = None) -> Result:
        if isinstance(op, GetOp):
            return self._get(conn, op)
        if isinstance(op, PutOp):
            return self._put(conn, op, vectors)
        if isinstance(op, SearchOp):
            return self._search(conn, op, vectors)
        if isinstance(op, ListNamespacesOp):
            return self._namespaces(conn, op)
        raise ValueError(f"unknown store operation {type(op).__name__}")

    @staticmethod
    def _item(row, cls=Item, **extra):
        namespace, key, value, created_at, updated_at = row[:5]
        return cls(namespace=tuple(namespace.split(".")), key=key, value=value, created_at=_when(created_at),
                   updated_at=_when(updated_at), **extra)

    _COLUMNS = (_items.c.namespace, _items.c.key, _items.c.value, _items.c.created_at, _items.c.updated_at)

    def _get(self, conn: Connection, op: GetOp) -> Item | None:
        now = _now_us()
        key = and_(_items.c.namespace == _joined(op.namespace), _items.c.key == op.key)
        row = conn.execute(select(*self._COLUMNS).where(key, _live(now))).first()
        if row is not None and op.refresh_ttl:
            conn.execute(update(_items).where(key, _items.c.ttl_us.is_not(None)).values(expires_at=_items.c.ttl_us + now))
        return self._item(row) if row else None

    def _put(self, conn: Connection, op: PutOp, vectors: np.ndarray | None = None) -> None:
        namespace, now = _joined(op.namespace), _now_us()
        # Expired items are deleted when their namespace is next written to.
        conn.execute(delete(_items).where(_items.c.namespace == namespace, _items.c.expires_at <= now))
        if op.value is None:
            conn.execute(delete(_items).where(_items.c.namespace == namespace, _items.c.key == op.key))
            return None
        ttl = int(op.ttl * 60_000_000) if op.ttl is not None else None
        expires = now + ttl if ttl is not None else None
        embedding = vectors.astype(_VECTOR).tobytes() if vectors is not None else None
        # One upsert: two servers putting the same new key at once both succeed.
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(_items).values(namespace=namespace, key=op.key, value=op.value, created_at=now,
                                        updated_at=now, expires_at=expires, ttl_us=ttl, embedding=embedding)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[_items.c.project, _items.c.namespace, _items.c.key],
            set_={"value": stmt.excluded.value, "updated_at": now, "expires_at": expires, "ttl_us": ttl,
                  "embedding": embedding},
        ))
        return None

    def _search(self, conn: Connection, op: SearchOp, query: np.ndarray | None = None) -> list[SearchItem]:
        found = self._find(conn, op, query)
        if op.refresh_ttl and found:
            now = _now_us()
            for item in found:
                conn.execute(update(_items).where(_items.c.namespace == _joined(item.namespace), _items.c.key == item.key,
                                             _items.c.ttl_us.is_not(None)).values(expires_at=_items.c.ttl_us + now))
        return found

    def _find(self, conn: Connection, op: SearchOp, query: np.ndarray | None = None) -> list[SearchItem]:
        columns = (*self._COLUMNS, _items.c.embedding) if query is not None else self._COLUMNS
        stmt = select(*columns).where(_live(_now_us()))
        if op.namespace_prefix:
            prefix = _joined(op.namespace_prefix)
            stmt = stmt.where(or_(_items.c.namespace == prefix, _items.c.namespace.like(_like_prefix(prefix), escape="\\")))
        leftover = {}
        for key, wanted in (op.filter or {}).items():
            condition = _sql_condition(conn, key, wanted)
            if condition is None:
                leftover[key] = wanted
            else:
                stmt = stmt.where(condition)
        stmt = stmt.order_by(_items.c.updated_at.desc(), _items.c.seq.desc())
        if not leftover and not op.query:
            rows = conn.execute(stmt.limit(op.limit).offset(op.offset)).all()
            return [self._item(row, SearchItem, score=None) for row in rows]
        rows = [r for r in conn.execute(stmt).all() if all(_matches(r[2].get(k), v) for k, v in leftover.items())]
        if query is not None:
            return self._nearest(rows, query[0], op.offset, op.limit)
        if op.query:
            scored = sorted(((_score(op.query, r[2]), i, r) for i, r in enumerate(rows)), key=lambda t: (-t[0], t[1]))
            return [self._item(r, SearchItem, score=s) for s, _, r in scored[op.offset: op.offset + op.limit]]
        return [self._item(r, SearchItem, score=None) for r in rows[op.offset: op.offset + op.limit]]

    def _nearest(self, rows: list, query: np.ndarray, offset: int, limit: int) -> list[SearchItem]:
        """The rows by their best field's cosine similarity to the query (the vectors are
        unit length); rows without vectors after them, newest first as they came."""
        scored, unscored = [], []
        for i, row in enumerate(rows):
            blob = row[-1]
            if blob:
                vectors = np.frombuffer(blob, dtype=_VECTOR).reshape(-1, query.shape[0])
                scored.append((float(np.max(vectors @ query)), i, row))
            else:
                unscored.append(row)
        scored.sort(key=lambda t: (-t[0], t[1]))
        ranked = [(score, row) for score, _, row in scored] + [(None, row) for row in unscored]
        return [self._item(row, SearchItem, score=score) for score, row in ranked[offset: offset + limit]]

    def _namespaces(self, conn: Connection, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        stmt = select(_items.c.namespace).where(_live(_now_us())).distinct()
        for condition in op.match_conditions or ():
            if condition.match_type == "prefix" and "*" not in condition.path:
                prefix = _joined(condition.path)
                stmt = stmt.where(or_(_items.c.namespace == prefix, _items.c.namespace.like(_like_prefix(prefix), escape="\\")))
        namespaces = [tuple(n.split(".")) for n in conn.execute(stmt).scalars()]
        namespaces = [n for n in namespaces
                      if all(_namespace_matches(n, tuple(c.path), c.match_type) for c in op.match_conditions or ())]
        if op.max_depth is not None:
            namespaces = {n[: op.max_depth] for n in namespaces}
        return sorted(namespaces)[op.offset: op.offset + op.limit]

