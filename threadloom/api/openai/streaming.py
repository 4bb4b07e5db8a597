"""Server-Sent Events for the Assistants API: the run's events as the SDK's stream
helpers expect them, a `done` event with `[DONE]` at the end, `:` comments to keep idle
connections open."""

from __future__ import annotations

from typing import AsyncIterator

from starlette.responses import StreamingResponse

from threadloom.runtime.events import EventBus

# A stream ends when the run stops: finished, or waiting for tool outputs.
END_EVENTS = frozenset({
    "thread.run.requires_action",
    "thread.run.completed",
    "thread.run.incomplete",
    "thread.run.failed",
    "thread.run.cancelled",
    "thread.run.expired",
})
DONE_FRAME = b"event: done\ndata: [DONE]\n\n"
KEEPALIVE_FRAME = b": keep-alive\n\n"
KEEPALIVE_SECONDS = 15.0


async def run_event_frames(bus: EventBus, run_id: str, start: int) -> AsyncIterator[bytes]:
    async for batch in bus.read_batches(run_id, start, idle=KEEPALIVE_SECONDS):
        if not batch:
            yield KEEPALIVE_FRAME
            continue
        frames = []
        for event in batch:
            frames.append(event.sse_frame())
            if event.name in END_EVENTS:
                frames.append(DONE_FRAME)
                yield b"".join(frames)
                return
        yield b"".join(frames)


def sse_response(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
