"""Identifiers on the LangGraph door: UUIDs for its own objects (assistants, threads,
runs), the default assistant of a graph, and the other doors' ids it also accepts
(`asst_...`, `thread_...`)."""

from __future__ import annotations

import os
import time
import uuid

from threadloom.services.langgraph.errors import Unprocessable

# LangGraph's namespace for the default assistant of a graph: uuid5(NAMESPACE_GRAPH, graph_id).
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
# Names derived by this door (interrupt ids, checkpoint ids, tool message ids).
NAMESPACE_DOOR = uuid.UUID("2f1d8a3c-64b9-4f0e-9d57-0b0c5f6e7a11")


def uuid7() -> str:
    """Time-ordered UUID (version 7), as LangGraph gives runs."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE_DOOR, ":".join(parts)))


def default_assistant_id(graph_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def check_thread_id(thread_id: str) -> str:
    """A LangGraph thread id is a UUID; threads made through /v1 (thread_...) are the same
    threads and are accepted too."""
    if is_uuid(thread_id) or thread_id.startswith("thread_"):
        return thread_id
    raise Unprocessable("Invalid thread ID: must be a UUID")


def check_run_id(run_id: str) -> str:
    if is_uuid(run_id):
        return run_id
    raise Unprocessable("Invalid run ID: must be a UUID")
