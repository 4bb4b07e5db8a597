"""Metadata of LangGraph assistants, threads and runs, held to the OpenAI door's limits
(threadloom.domain.metadata): at most 16 keys of at most 64 characters. LangGraph values
are any JSON, so a value's size is its JSON text (a string's own length, as on /v1), at
most 512 characters.

We keep 16 keys rather than a larger count: LangGraph's clients add few keys of their own
(the SDK's `graph_id` on a new thread). The server adds `graph_id` and `assistant_id` to a
thread that runs, which may take it past 16; so a patch is refused only when it adds keys
past the limit, and changing existing keys always works.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from threadloom.domain.metadata import MAX_KEY, MAX_PAIRS, MAX_VALUE
from threadloom.services.langgraph.errors import Unprocessable


def _value_size(value) -> int:
    return len(value) if isinstance(value, str) else len(orjson.dumps(value).decode())


def _checked(metadata: dict) -> dict:
    if len(metadata) > MAX_PAIRS:
        raise PydanticCustomError(
            "too_long", "Metadata should have at most {limit} keys, not {count}",
            {"limit": MAX_PAIRS, "count": len(metadata)},
        )
    for key, value in metadata.items():
        if len(key) > MAX_KEY:
            raise PydanticCustomError(
                "string_too_long", "Metadata keys should have at most {limit} characters, not {count}",
                {"limit": MAX_KEY, "count": len(key)},
            )
        size = _value_size(value)
        if size > MAX_VALUE:
            raise PydanticCustomError(
                "too_long", "Metadata value '{key}' should have at most {limit} characters of JSON, not {count}",
                {"key": key, "limit": MAX_VALUE, "count": size},
            )
    return metadata


# The metadata an assistant, thread or run stores (filters of searches are not held to it).
Metadata = Annotated[dict, AfterValidator(_checked)]


def merged_metadata(current: dict, patch: dict | None) -> dict:
    """A patch merges into what is stored; it may not take the object past the key limit."""
    merged = {**current, **(patch or {})}
    added = len(merged) - len(current)
    if added and len(merged) > MAX_PAIRS:
        raise Unprocessable(
            f"Invalid 'metadata': too many keys. Metadata holds at most {MAX_PAIRS} keys; this one has "
            f"{len(current)} and the patch adds {added}."
        )
    return merged
