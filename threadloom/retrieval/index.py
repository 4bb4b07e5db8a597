"""A vector store's search index, held in memory and rebuilt from the database when the
store's version moves on (several servers may share one database: each keeps its own).

Each completed file of the store is a segment (its chunks' texts, embeddings and terms),
kept across rebuilds: a change loads only the files this server has not seen yet.

Scores (0..1), as the README explains: semantic = cosine similarity of the chunk and the
query embeddings (negative values as 0); keyword = BM25, divided by the best BM25 score
of the query in the store; hybrid = 0.7 x semantic + 0.3 x keyword. A list of queries
scores each chunk by its best query. The ranker `none` uses the semantic score alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from threadloom.retrieval.keyword import KeywordIndex, TermRows, Vocabulary
from threadloom.store import tables
from threadloom.store.database import Database

SEMANTIC_WEIGHT = 0.7
KEYWORD_WEIGHT = 0.3


@dataclass
class Segment:
    file_id: str
    texts: list[str]
    embeddings: np.ndarray  # (n, d) float32, unit rows
    terms: TermRows


@dataclass
class Hit:
    file_id: str
    text: str
    score: float


class StoreIndex:
    def __init__(self, segments: list[Segment], vocabulary: Vocabulary):
        self.segments = segments
        self.file_of: list[str] = [s.file_id for s in segments for _ in s.texts]
        self.texts: list[str] = [t for s in segments for t in s.texts]
        dims = next((s.embeddings.shape[1] for s in segments if s.embeddings.size), 0)
        self.embeddings = (
            np.vstack([s.embeddings for s in segments if s.embeddings.size]) if dims else np.zeros((0, 0), np.float32)
        )
        self.keyword = KeywordIndex([s.terms for s in segments], vocabulary)

    def __len__(self) -> int:
        return len(self.texts)

    def rank(
        self,
        queries: list[str],
        vectors: np.ndarray,
        *,
        allowed_files: set[str] | None,
        limit: int,
        threshold: float,
        hybrid: bool,
    ) -> list[Hit]:
        if not self.texts:
            return []
        best = np.zeros(len(self.texts), np.float32)
        for query, vector in zip(queries, vectors):
            score = np.clip(self.embeddings @ vector, 0.0, 1.0) if self.embeddings.size else np.zeros_like(best)
            if hybrid:
                keyword = self.keyword.scores(query)
                top = float(keyword.max()) if keyword.size else 0.0
                keyword = keyword / top if top > 0 else keyword
                score = SEMANTIC_WEIGHT * score + KEYWORD_WEIGHT * keyword
            np.maximum(best, score, out=best)
        if allowed_files is not None:
            mask = np.fromiter((f in allowed_files for f in self.file_of), bool, len(self.file_of))
            best = np.where(mask, best, -1.0)
        count = min(limit, len(best))
        top = np.argpartition(-best, count - 1)[:count]
        top = top[np.argsort(-best[top], kind="stable")]
        return [
            Hit(self.file_of[i], self.texts[i], round(float(best[i]), 6))
            for i in top
            if best[i] >= 0 and best[i] >= threshold
        ]


def _load_segments(conn, vector_store_id: str, wanted: dict[tuple[str, int], None]) -> list[tuple[tuple[str, int], list[str], list[bytes]]]:
    """Chunks of the given (file id, row seq) pairs, grouped per file."""
    chunks = tables.vector_store_chunks
    out = []
    for file_id, seq in wanted:
        rows = conn.execute(
            select(chunks.c.text, chunks.c.embedding)
            .where(chunks.c.vector_store_id == vector_store_id, chunks.c.file_id == file_id)
            .order_by(chunks.c.position)
        ).all()
        out.append(((file_id, seq), [r[0] for r in rows], [bytes(r[1]) for r in rows]))
    return out


def _completed_files(conn, vector_store_id: str) -> list[tuple[str, int]]:
    files = tables.vector_store_files
    stmt = (
        select(files.c.id, files.c.seq)
        .where(files.c.vector_store_id == vector_store_id, files.c.status == "completed")
        .order_by(files.c.seq)
    )
    return [(r[0], r[1]) for r in conn.execute(stmt)]


class IndexCache:
    """The indexes of the stores this server has searched, each tagged with the store
    version it reflects."""

    def __init__(self, db: Database, max_stores: int = 64):
        self.db = db
        self.max_stores = max_stores
        self._indexes: dict[str, tuple[int, StoreIndex, dict, Vocabulary]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, vector_store_id: str, version: int) -> StoreIndex:
        cached = self._indexes.get(vector_store_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        lock = self._locks.setdefault(vector_store_id, asyncio.Lock())
        async with lock:
            cached = self._indexes.get(vector_store_id)
            if cached is not None and cached[0] == version:
                return cached[1]
            segments, vocabulary = ({}, Vocabulary()) if cached is None else (cached[2], cached[3])
            current = await self.db.read_off_loop(lambda conn: _completed_files(conn, vector_store_id))
            wanted = {key: None for key in current if key not in segments}
            loaded = await self.db.read_off_loop(lambda conn: _load_segments(conn, vector_store_id, wanted))

            def build() -> tuple[StoreIndex, dict]:
                kept = {key: segments[key] for key in current if key in segments}
                for key, texts, blobs in loaded:
                    embeddings = np.frombuffer(b"".join(blobs), np.float32)
                    dims = embeddings.size // len(texts) if texts else 0
                    kept[key] = Segment(key[0], texts, embeddings.reshape(len(texts), dims) if dims else embeddings.reshape(0, 0), TermRows.of(texts, vocabulary))
                ordered = [kept[key] for key in current if key in kept]
                return StoreIndex(ordered, vocabulary), kept

            index, kept = await asyncio.to_thread(build)
            if len(self._indexes) >= self.max_stores and vector_store_id not in self._indexes:
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[vector_store_id] = (version, index, kept, vocabulary)
            return index

    def forget(self, vector_store_id: str) -> None:
        self._indexes.pop(vector_store_id, None)
