"""One run, driven through one door, timed from the client's side.

Each flow takes an httpx.AsyncClient (one per load worker) and returns a `RunTiming`:
the wall time from the first request to the end of the stream, the time to the first
text delta, how many text deltas arrived, and an error string when the run failed.
SSE is parsed by hand from raw bytes (`SSEParser`), so the client costs little.

Doors:
- `upstream_chat`: the same chat completion sent straight to the model (the baseline).
- `threadloom_v1_run`: `POST /v1/threads/runs` with stream=true (thread + run in one
  call) until the `done` event.
- `langgraph_run`: `POST /threads` then `POST /threads/{id}/runs/stream` with
  stream_mode "messages-tuple" until the stream ends: LangGraph's Agent Server API,
  spoken by the peer and by threadloom's LangGraph door alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import orjson

PROMPT = "Say hello."
OPENAI_HEADERS = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer bench"}


@dataclass
class RunTiming:
    latency: float = 0.0  # seconds, first request sent -> stream finished
    ttft: float | None = None  # seconds, first request sent -> first text delta
    deltas: int = 0
    error: str | None = None
    end: float = 0.0  # time.perf_counter() at the end
    stamps: list = field(default_factory=list)  # (receive time.time(), delta text) when asked
    started: float | None = None  # LangGraph API: seconds to the `metadata` event (a worker took the run)


class SSEParser:
    """Splits a byte stream into (event, data) pairs; tolerates \\r\\n line ends."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buf = self.buf + chunk
        if b"\r" in buf:
            tail = b""
            if buf.endswith(b"\r"):
                buf, tail = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n")
        else:
            tail = b""
        *blocks, rest = buf.split(b"\n\n")
        self.buf = rest + tail
        out = []
        for block in blocks:
            event = b"message"
            data = []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    event = line[6:].strip()
            if data or event != b"message":
                out.append((event, b"\n".join(data)))
        return out


def _fail(t: RunTiming, t0: float, why: str) -> RunTiming:
    t.error = why
    t.end = time.perf_counter()
    t.latency = t.end - t0
    return t


async def upstream_chat(client: httpx.AsyncClient, base: str, model: str = "bench-model",
                        stamps: bool = False) -> RunTiming:
    t = RunTiming()
    t0 = time.perf_counter()
    body = {"model": model, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}]}
    parser = SSEParser()
    done = False
    async with client.stream("POST", base + "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return _fail(t, t0, f"HTTP {r.status_code}")
        async for raw in r.aiter_raw():
            for _, data in parser.feed(raw):
                if data == b"[DONE]":
                    done = True
                elif b'"content":"' in data and b'"content":""' not in data:
                    t.deltas += 1
                    if t.ttft is None:
                        t.ttft = time.perf_counter() - t0
                    if stamps:
                        t.stamps.append((time.time(), data))
    if not done:
        return _fail(t, t0, "stream ended without [DONE]")
    t.end = time.perf_counter()
    t.latency = t.end - t0
    return t


async def threadloom_v1_run(client: httpx.AsyncClient, base: str, assistant_id: str, model: str | None = None,
                            stamps: bool = False) -> RunTiming:
    t = RunTiming()
    t0 = time.perf_counter()
    body: dict = {"assistant_id": assistant_id, "stream": True,
                  "thread": {"messages": [{"role": "user", "content": PROMPT}]}}
    if model:
        body["model"] = model
    parser = SSEParser()
    done = False
    status = None
    async with client.stream("POST", base + "/v1/threads/runs", json=body, headers=OPENAI_HEADERS) as r:
        if r.status_code != 200:
            text = (await r.aread())[:200]
            return _fail(t, t0, f"HTTP {r.status_code}: {text!r}")
        async for raw in r.aiter_raw():
            for event, data in parser.feed(raw):
                if event == b"thread.message.delta":
                    t.deltas += 1
                    if t.ttft is None:
                        t.ttft = time.perf_counter() - t0
                    if stamps:
                        t.stamps.append((time.time(), data))
                elif event == b"done":
                    done = True
                elif event in (b"thread.run.failed", b"thread.run.cancelled", b"thread.run.expired",
                               b"thread.run.incomplete", b"thread.run.requires_action", b"error"):
                    status = event.decode()
    if status:
        return _fail(t, t0, status)
    if not done:
        return _fail(t, t0, "stream ended without done")
    t.end = time.perf_counter()
    t.latency = t.end - t0
    return t


def stamp_of(data: bytes) -> float | None:
    """The model's send time carried by a stamped delta (scripted upstream `stamp`), read
    from a chat-completion chunk or from a thread.message.delta event."""
    try:
        obj = orjson.loads(data)
        if "choices" in obj:
            text = obj["choices"][0]["delta"]["content"]
        else:
            text = obj["delta"]["content"][0]["text"]["value"]
        return float(text.split()[0])
    except (ValueError, KeyError, IndexError, TypeError, orjson.JSONDecodeError):
        return None


def _has_text(data: bytes) -> bool:
    """A messages-tuple event carrying a non-empty text chunk."""
    try:
        chunk = orjson.loads(data)[0]
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
        return False
    content = chunk.get("content") if isinstance(chunk, dict) else None
    if isinstance(content, str):
        return bool(content)
    if isinstance(content, list):
        return any(isinstance(p, dict) and p.get("text") for p in content)
    return False


async def langgraph_run(client: httpx.AsyncClient, base: str, assistant_id: str = "agent") -> RunTiming:
    t = RunTiming()
    t0 = time.perf_counter()
    r = await client.post(base + "/threads", json={})
    if r.status_code != 200:
        return _fail(t, t0, f"POST /threads HTTP {r.status_code}: {r.text[:200]!r}")
    thread_id = r.json()["thread_id"]
    body = {"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": PROMPT}]},
            "stream_mode": "messages-tuple"}
    parser = SSEParser()
    error = None
    async with client.stream("POST", f"{base}/threads/{thread_id}/runs/stream", json=body) as r:
        if r.status_code != 200:
            text = (await r.aread())[:200]
            return _fail(t, t0, f"runs/stream HTTP {r.status_code}: {text!r}")
        async for raw in r.aiter_raw():
            for event, data in parser.feed(raw):
                if event == b"messages" or event.startswith(b"messages|"):
                    if t.ttft is None:
                        if _has_text(data):
                            t.deltas += 1
                            t.ttft = time.perf_counter() - t0
                    elif b'"content":""' not in data:
                        t.deltas += 1
                elif event == b"metadata" and t.started is None:
                    t.started = time.perf_counter() - t0
                elif event == b"error":
                    error = "error event: " + data[:200].decode(errors="replace")
    if error:
        return _fail(t, t0, error)
    if t.ttft is None:
        return _fail(t, t0, "no text delta")
    t.end = time.perf_counter()
    t.latency = t.end - t0
    return t
