"""Server-Sent Events for the Assistants API: the run's events as the SDK's stream
helpers expect them, a `done` event with `[DONE]` at the end, `:` comments to keep idle
connections open."""

from __future__ import annotations

import logging
from typing import AsyncIterator

import orjson

from starlette.responses import StreamingResponse

from threadloom import metrics
from threadloom.domain.run_status import STOP_EVENTS
from threadloom.domain.run_step import step_wire
from threadloom.runtime.events import EventBus

DONE_FRAME = b"event: done\ndata: [DONE]\n\n"
KEEPALIVE_FRAME = b": keep-alive\n\n"
KEEPALIVE_SECONDS = 15.0
_ERROR = {"message": "The event stream failed; the run goes on: retrieve it to follow it.",
          "type": "server_error", "param": None, "code": "stream_error"}
ERROR_FRAME = b"event: error\ndata: " + orjson.dumps({"error": _ERROR, **_ERROR}) + b"\n\n"

log = logging.getLogger("threadloom.api")


def _encode(name: str, data: dict | str) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    return f"event: {name}\ndata: {payload}\n\n".encode()


def _frame(event, search_content: bool) -> bytes:
    if not search_content and event.name.startswith("thread.run.step.") and event.name != "thread.run.step.delta":
        step = step_wire(event.data, False)
        if step is not event.data:
            return _encode(event.name, step)
    if event.frame is None:  # encoded once, whoever reads it
        event.frame = _encode(event.name, event.data)
    return event.frame


async def run_event_frames(bus: EventBus, run_id: str, start: int, search_content: bool = False) -> AsyncIterator[bytes]:
    """`search_content`: whether step events keep their file_search results' content
    (the run was created with that `include[]`)."""
    metrics.ACTIVE_STREAMS.inc()
    try:
        async for batch in bus.read_batches(run_id, start, idle=KEEPALIVE_SECONDS):
            if not batch:
                yield KEEPALIVE_FRAME
                continue
            frames = []
            for event in batch:
                frames.append(_frame(event, search_content))
                if event.name in STOP_EVENTS:
                    frames.append(DONE_FRAME)
                    yield b"".join(frames)
                    return
            yield b"".join(frames)
    except Exception:
        # A fault of the stream itself (not of the run, which reports its own failure as
        # thread.run.failed): the SDK raises APIError on an `error` event with an "error" key.
        log.exception("stream of run %s broke", run_id)
        yield ERROR_FRAME + DONE_FRAME
    finally:
        metrics.ACTIVE_STREAMS.dec()


def sse_response(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
