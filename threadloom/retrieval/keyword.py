"""Keyword scoring: Okapi BM25 over a store's chunks, kept as per-file segments so that a
file added to or removed from a store changes only its own part of the index.

A segment holds its chunks' terms as CSR arrays (term ids and counts per chunk) against the
store's vocabulary; the combined index turns them column-major once per change, so
scoring a query term touches only the chunks that contain it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

_TERM = re.compile(r"\w\w+")
# Words that carry no topic: questions are full of them ("how many ... do I get").
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further get got had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves many much""".split()
)
K1 = 1.2
B = 0.75


def terms(text: str) -> list[str]:
    return [t for t in _TERM.findall(text.lower()) if t not in STOPWORDS]


class Vocabulary:
    """Term -> id, for one store; it only grows."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def add(self, term: str) -> int:
        found = self.ids.get(term)
        if found is None:
            found = self.ids[term] = len(self.ids)
        return found


@dataclass
class TermRows:
    """Chunks' term counts as CSR arrays: chunk i's terms are ids[indptr[i]:indptr[i+1]]."""

    indptr: np.ndarray  # int64, len n+1
    ids: np.ndarray  # int32
    counts: np.ndarray  # float32

    @classmethod
    def of(cls, texts: list[str], vocabulary: Vocabulary) -> "TermRows":
        indptr = [0]
        ids: list[int] = []
        counts: list[int] = []
        for text in texts:
            for term, n in Counter(terms(text)).items():
                ids.append(vocabulary.add(term))
                counts.append(n)
            indptr.append(len(ids))
        return cls(np.asarray(indptr, np.int64), np.asarray(ids, np.int32), np.asarray(counts, np.float32))


class KeywordIndex:
    """BM25 over the concatenation of several TermRows."""

    def __init__(self, parts: list[TermRows], vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        offsets = np.cumsum([0] + [len(p.ids) for p in parts])
        indptr = np.concatenate([[0]] + [p.indptr[1:] + off for p, off in zip(parts, offsets)]) if parts else np.zeros(1, np.int64)
        ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, np.int32)
        counts = np.concatenate([p.counts for p in parts]) if parts else np.zeros(0, np.float32)
        self.size = len(indptr) - 1
        rows = np.repeat(np.arange(self.size, dtype=np.int32), np.diff(indptr))
        self.length = np.add.reduceat(counts, indptr[:-1]) if len(counts) else np.zeros(self.size, np.float32)
        if self.size and len(counts):
            self.length[np.diff(indptr) == 0] = 0  # reduceat repeats the next value for empty rows
        self.average = float(self.length.mean()) if self.size else 0.0
        # Column-major: for each term, the chunks holding it and how often.
        order = np.argsort(ids, kind="stable")
        self.col_rows = rows[order]
        self.col_counts = counts[order]
        self.col_ptr = np.searchsorted(ids[order], np.arange(len(vocabulary.ids) + 1))
        df = np.diff(self.col_ptr).astype(np.float64)
        self.idf = np.log1p((self.size - df + 0.5) / (df + 0.5)).astype(np.float32)

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(self.size, np.float32)
        if not self.size or self.average == 0:
            return out
        for term in set(terms(query)):
            term_id = self.vocabulary.ids.get(term)
            if term_id is None or term_id >= len(self.col_ptr) - 1:
                continue
            lo, hi = self.col_ptr[term_id], self.col_ptr[term_id + 1]
            rows, tf = self.col_rows[lo:hi], self.col_counts[lo:hi]
            norm = K1 * (1 - B + B * self.length[rows] / self.average)
            out[rows] += self.idf[term_id] * tf * (K1 + 1) / (tf + norm)
        return out
