"""How deep a request body may nest. orjson writes at most 254 levels, and the store wraps a
body's values in a few more, so a deeper body would be accepted and then fail as a 500 when
stored. 100 levels is far more than any tool schema, state or message needs."""

from __future__ import annotations

MAX_DEPTH = 100


def _depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:  # not recursive: Python's own stack is shorter than orjson's 1024 levels
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def too_deep(raw: bytes, data) -> bool:
    # Counting brackets (in C) spares the walk for nearly every body: too few to nest deep.
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth_exceeds(data, MAX_DEPTH)
