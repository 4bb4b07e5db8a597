"""threads.search's `extract`: named values picked out of each thread found, by paths such
as `values.messages[-1].content` or `metadata.user.id` (dots between keys, brackets around
list indices, negative from the end), returned as the thread's `extracted`. A path that
leads nowhere gives null; one that does not start at the thread's config, interrupts,
metadata or values is refused (422), as LangGraph's server does."""

from __future__ import annotations

import re

from threadloom.services.langgraph.errors import Unprocessable

ROOTS = ("config", "interrupts", "metadata", "values")
MAX_PATHS = 10
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)\]")


def check_paths(extract: dict[str, str]) -> None:
    if len(extract) > MAX_PATHS:
        raise Unprocessable(f"extract names {len(extract)} paths; at most {MAX_PATHS} are allowed")
    for alias, path in extract.items():
        if not path:
            raise Unprocessable(f"Extract path for '{alias}' must be a non-empty string")
        if re.split(r"[.\[]", path, maxsplit=1)[0] not in ROOTS:
            raise Unprocessable(f"Extract path '{path}' must start with one of: {', '.join(ROOTS)}")


def _steps(path: str) -> list[str | int] | None:
    """The keys and indices of `path`; None when it is not well formed."""
    steps, at = [], 0
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None or (at > 0 and match.group(1) is not None and path[at] != "."):
            return None
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        at = match.end()
    return steps


def extracted(thread: dict, extract: dict[str, str]) -> dict:
    out = {}
    for alias, path in extract.items():
        value = thread
        for step in _steps(path) or [None]:
            if isinstance(step, str) and isinstance(value, dict):
                value = value.get(step)
            elif isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
                value = value[step]
            else:
                value = None
            if value is None:
                break
        out[alias] = value
    return out
