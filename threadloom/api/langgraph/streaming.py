"""Responses that stay open while a run works: Server-Sent Events (LangGraph's framing:
`event:` / `data:` / `id:` lines, `: heartbeat` comments every 5 s), and the JSON of wait
and join, which LangGraph's server keeps alive with whitespace until the result is ready."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import orjson
from starlette.responses import StreamingResponse

from threadloom.services.langgraph.stream import HEARTBEAT_SECONDS, StreamEvent

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def run_locations(thread_id: str | None, run_id: str, suffix: str) -> dict:
    base = f"/threads/{thread_id}/runs/{run_id}" if thread_id else f"/runs/{run_id}"
    return {"Location": base + suffix, "Content-Location": base}


HEARTBEAT = b": heartbeat\r\n\r\n"


def frame(name: str, data, event_id: str | None) -> bytes:
    """One event as LangGraph's server frames it (CRLF line ends, the id last)."""
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, bytes):
        data = orjson.dumps(data)
    out = b"event: " + name.encode() + b"\r\ndata: " + data + b"\r\n"
    if event_id is not None:
        out += b"id: " + event_id.encode() + b"\r\n"
    return out + b"\r\n"


async def _framed(batches: AsyncIterator[list[StreamEvent]]) -> AsyncIterator[bytes]:
    # A batch goes to the socket in one write; an empty one is a heartbeat.
    async for batch in batches:
        yield b"".join(frame(name, data, event_id) for name, data, event_id in batch) if batch else HEARTBEAT


def sse_response(batches: AsyncIterator[list[StreamEvent]], headers: dict) -> StreamingResponse:
    return StreamingResponse(_framed(batches), media_type="text/event-stream", headers={**SSE_HEADERS, **headers})


async def _json_when_ready(result: Callable[[], Awaitable[dict]], on_close: Callable[[bool], None] | None):
    task = asyncio.get_running_loop().create_task(result())
    delivered = False
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_SECONDS)
            if done:
                body = orjson.dumps(task.result())
                delivered = True
                yield body
                return
            yield b"\n"
    finally:
        if not task.done():
            task.cancel()
        if on_close is not None:
            on_close(delivered)


def json_when_ready(result: Callable[[], Awaitable[dict]], headers: dict,
                    on_close: Callable[[bool], None] | None = None) -> StreamingResponse:
    return StreamingResponse(_json_when_ready(result, on_close), media_type="application/json", headers=headers)
