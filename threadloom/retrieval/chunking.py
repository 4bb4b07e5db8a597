"""Chunks of a file's text, by tokens, as OpenAI's file_search cuts them: windows of at most
`max_tokens` o200k tokens, each starting `max_tokens - overlap` tokens after the previous,
the last one ending at the text's end."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass
class Chunk:
    text: str
    tokens: int


@lru_cache(maxsize=1)
def _encoding():
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def _char_start(data: bytes, offset: int) -> int:
    """The first UTF-8 character boundary at or after `offset`: a token may end inside a
    multi-byte character, and a chunk must not start or end in the middle of one."""
    while offset < len(data) and (data[offset] & 0xC0) == 0x80:
        offset += 1
    return offset


SEGMENT_CHARS = 100_000  # the encoder refuses more than 200,000 tokens a call


def _token_lengths(text: str) -> list[int]:
    """Bytes of each token of `text`, encoded a segment at a time (cut at whitespace)."""
    encoding = _encoding()
    lengths: list[int] = []
    start = 0
    while start < len(text):
        end = min(start + SEGMENT_CHARS, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + SEGMENT_CHARS // 2, end)
            end = cut if cut > start else end
        ids = encoding.encode_ordinary(text[start:end])
        lengths.extend(len(b) for b in encoding.decode_tokens_bytes(ids))
        start = end
    return lengths


def chunk_text(text: str, max_tokens: int = 800, overlap: int = 400) -> list[Chunk]:
    if not text.strip():
        return []
    data = text.encode("utf-8")
    ends = np.cumsum(_token_lengths(text))  # byte offset after each token
    count = len(ends)
    starts = np.concatenate([[0], ends[:-1]])
    step = max(1, max_tokens - overlap)
    chunks = []
    first = 0
    while True:
        last = min(first + max_tokens, count)
        lo, hi = _char_start(data, int(starts[first])), _char_start(data, int(ends[last - 1]))
        piece = data[lo:hi].decode("utf-8").strip()
        if piece:
            chunks.append(Chunk(piece, last - first))
        if last >= count:
            return chunks
        first += step
