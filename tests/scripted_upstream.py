"""A scripted OpenAI-compatible model server: a test double standing in for the LLM.

Run: `python tests/scripted_upstream.py --port 9100` (or import `app`, a raw ASGI app).
Serves POST /v1/chat/completions (stream + non-stream, exact OpenAI chunk shape), GET /v1/models, GET /health.
Script replies: POST /__script {"responses":[R,...], "model": optional} queues replies (per model, else global);
R = {text, chunk_size, tool_calls, finish_reason, delay, first_delay, status+error(+headers), malformed, drop, hang, usage,
repeat, echo, stamp}; POST /__default R sets the fallback reply; GET|DELETE /__requests; POST /__reset clears all.
(`stamp`: true makes each content delta the wall-clock send time "%.6f " -- the bench measures relay delay with it.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections import deque

import orjson

DEFAULT_REPLY: dict = {"text": "Hello from the scripted model."}
MODEL_ID = "scripted"


class _Dropped(Exception):
    """Raised to abort a response mid-stream (R.drop): the server closes the connection."""


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _Dropped)


class ScriptState:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.global_queue: deque = deque()
        self.model_queues: dict[str, deque] = {}
        self.requests: list = []
        self.default: dict = dict(DEFAULT_REPLY)

    def next_reply(self, model: str | None) -> dict:
        q = self.model_queues.get(model) if model is not None else None
        if q:
            return q.popleft()
        if self.global_queue:
            return self.global_queue.popleft()
        return self.default


STATE = ScriptState()
_counter = 0


def _new_id(prefix: str) -> str:
    global _counter
    _counter += 1
    return f"{prefix}{os.getpid():x}{_counter:08x}"


# ---------------------------------------------------------------- helpers


def _message_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                if isinstance(p.get("text"), str):
                    parts.append(p["text"])
            elif isinstance(p, str):
                parts.append(p)
        return "".join(parts)
    return str(content)


def _prompt_words(messages) -> int:
    n = 0
    for m in messages or ():
        if isinstance(m, dict):
            n += len(_message_text(m.get("content")).split())
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                n += len(str(fn.get("arguments", "")).split()) + 1
    return n


def _last_user_text(messages) -> str:
    for m in reversed(messages or []):
        if isinstance(m, dict) and m.get("role") == "user":
            return _message_text(m.get("content"))
    return ""


def _split(text: str, size: int) -> list[str]:
    size = max(1, int(size))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _plan(reply: dict, body: dict):
    """Returns (content deltas, tool calls [(id, name, args str)], finish_reason)."""
    if reply.get("echo"):
        text = _last_user_text(body.get("messages"))
    else:
        text = reply.get("text") or ""
    chunk_size = reply.get("chunk_size") or 4
    repeat = reply.get("repeat")
    if repeat:
        deltas = [text] * int(repeat)
    else:
        deltas = _split(text, chunk_size) if text else []
    calls = []
    for tc in reply.get("tool_calls") or ():
        args = tc.get("arguments", "")
        if not isinstance(args, str):
            args = orjson.dumps(args).decode()
        calls.append((tc.get("id") or _new_id("call_"), tc.get("name", ""), args))
    finish = reply.get("finish_reason") or ("tool_calls" if calls else "stop")
    return deltas, calls, finish, chunk_size


def _usage(reply: dict, body: dict, n_deltas: int) -> dict:
    over = reply.get("usage") or {}
    pt = over.get("prompt_tokens")
    ct = over.get("completion_tokens")
    if pt is None:
        pt = _prompt_words(body.get("messages"))
    if ct is None:
        ct = n_deltas
    return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}


def _error_body(reply: dict) -> bytes:
    err = reply.get("error")
    status = int(reply.get("status") or 500)
    if isinstance(err, dict):
        e = {"message": "error", "type": "server_error", "param": None, "code": None}
        e.update(err)
    else:
        typ = "invalid_request_error" if 400 <= status < 500 else "server_error"
        code = None
        if status == 429:
            typ, code = "requests", "rate_limit_exceeded"
        e = {"message": str(err or f"scripted error {status}"), "type": typ, "param": None, "code": code}
    return orjson.dumps({"error": e})


# ---------------------------------------------------------------- ASGI plumbing

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _Dropped()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return b"".join(chunks)


async def _send_json(send, status: int, obj, headers: dict | None = None) -> None:
    data = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    extra = [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": _JSON_HEADERS + extra})
    await send({"type": "http.response.body", "body": data})


class _DisconnectWatch:
    """Watches `receive` for http.disconnect while we stream (only when we wait)."""

    def __init__(self, receive) -> None:
        self.event = asyncio.Event()
        self.task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive) -> None:
        try:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    self.event.set()
                    return
        except Exception:
            self.event.set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep; returns True when the client went away."""
        if self.event.is_set():
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self.event.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False

    def close(self) -> None:
        self.task.cancel()


async def _chat_completions(scope, receive, send) -> None:
    raw = await _read_body(receive)
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        await _send_json(send, 400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error", "param": None, "code": None}})
        return
    STATE.requests.append(body)
    model = body.get("model") or MODEL_ID
    reply = STATE.next_reply(model)
    stream = bool(body.get("stream"))

    delay = float(reply.get("delay") or 0)
    first_delay = float(reply.get("first_delay") or 0)
    watch = _DisconnectWatch(receive) if (delay > 0 or first_delay > 0 or reply.get("hang")) else None
    try:
        if reply.get("hang"):
            await watch.event.wait()
            return
        if first_delay and await watch.sleep(first_delay):
            return
        if reply.get("status"):
            await _send_json(send, int(reply["status"]), _error_body(reply), reply.get("headers"))
            return
        if stream:
            await _stream(send, body, reply, model, watch, delay)
        else:
            await _complete(send, body, reply, model, watch, delay)
    finally:
        if watch is not None:
            watch.close()


async def _complete(send, body, reply, model, watch, delay) -> None:
    if reply.get("drop") is not None:
        raise _Dropped()
    deltas, calls, finish, _ = _plan(reply, body)
    if delay > 0 and await watch.sleep(delay * max(0, len(deltas) - 1)):
        return  # a non-streamed reply takes as long as its stream would
    content = "".join(deltas)
    message: dict = {"role": "assistant", "content": content if (content or not calls) else None, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}} for cid, name, args in calls
        ]
    n = len(deltas) + sum(1 + len(_split(a, 4)) for _, _, a in calls)
    out = {
        "id": _new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(reply, body, n),
        "system_fingerprint": None,
    }
    await _send_json(send, 200, out)


async def _stream(send, body, reply, model, watch, delay) -> None:
    deltas, calls, finish, chunk_size = _plan(reply, body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    cid = _new_id("chatcmpl-")
    created = int(time.time())
    # Every chunk shares this prefix/suffix; only the delta (and finish_reason) varies.
    head = b'data: {"id":"' + cid.encode() + b'","object":"chat.completion.chunk","created":' + str(created).encode()
    head += b',"model":' + orjson.dumps(model) + b',"system_fingerprint":null,"choices":[{"index":0,"delta":'
    tail_none = b',"logprobs":null,"finish_reason":null}]' + (b',"usage":null' if include_usage else b"") + b"}\n\n"

    events: list[bytes] = [head + b'{"role":"assistant","content":""}' + tail_none]
    stamp = bool(reply.get("stamp"))
    for d in deltas:
        events.append(head + b'{"content":' + orjson.dumps(d) + b"}" + tail_none)
    for i, (call_id, name, args) in enumerate(calls):
        first = {"tool_calls": [{"index": i, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}
        events.append(head + orjson.dumps(first) + tail_none)
        for frag in _split(args, chunk_size) if args else ():
            events.append(head + orjson.dumps({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}) + tail_none)
    events.append(
        head + b'{},"logprobs":null,"finish_reason":' + orjson.dumps(finish) + b"}]"
        + (b',"usage":null' if include_usage else b"") + b"}\n\n"
    )
    n_deltas = len(events) - 2
    if include_usage:
        usage = _usage(reply, body, n_deltas)
        events.append(
            b'data: {"id":"' + cid.encode() + b'","object":"chat.completion.chunk","created":' + str(created).encode()
            + b',"model":' + orjson.dumps(model) + b',"system_fingerprint":null,"choices":[],"usage":'
            + orjson.dumps(usage) + b"}\n\n"
        )
    events.append(b"data: [DONE]\n\n")

    malformed_at = -1
    if reply.get("malformed"):
        malformed_at = max(1, len(events) // 2)
        events.insert(malformed_at, b"data: {this is not json\n\n")
    drop = reply.get("drop")
    if drop is not None:
        events = events[: int(drop)]

    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    if delay <= 0:
        # No pacing: coalesce events into few writes (what a fast server's TCP would do anyway).
        batch = 64
        for i in range(0, len(events), batch):
            await send({"type": "http.response.body", "body": b"".join(events[i : i + batch]), "more_body": True})
    else:
        content_at = b'"delta":{"content":"'
        for i, ev in enumerate(events):
            if i and await watch.sleep(delay):
                return
            if stamp and content_at in ev:
                # Replace the delta's text by the send time (same length budget is irrelevant to clients).
                start = ev.index(content_at) + len(content_at)
                end = ev.index(b'"}', start)
                ev = ev[:start] + b"%.6f " % time.time() + ev[end:]
            await send({"type": "http.response.body", "body": ev, "more_body": True})
    if drop is not None:
        raise _Dropped()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    method = scope["method"]
    path = scope["path"].rstrip("/") or "/"
    if path in ("/v1/chat/completions", "/chat/completions") and method == "POST":
        await _chat_completions(scope, receive, send)
    elif path == "/health":
        await _send_json(send, 200, {"status": "ok"})
    elif path in ("/v1/models", "/models") and method == "GET":
        await _send_json(
            send, 200,
            {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "scripted"}]},
        )
    elif path == "/__script" and method == "POST":
        body = orjson.loads(await _read_body(receive) or b"{}")
        responses = body.get("responses") or []
        model = body.get("model")
        q = STATE.model_queues.setdefault(model, deque()) if model else STATE.global_queue
        q.extend(responses)
        await _send_json(send, 200, {"queued": len(responses)})
    elif path == "/__default" and method == "POST":
        STATE.default = orjson.loads(await _read_body(receive) or b"{}")
        await _send_json(send, 200, {"ok": True})
    elif path == "/__requests" and method == "GET":
        await _send_json(send, 200, STATE.requests)
    elif path == "/__requests" and method == "DELETE":
        STATE.requests.clear()
        await _send_json(send, 200, {"ok": True})
    elif path == "/__reset" and method == "POST":
        STATE.reset()
        await _send_json(send, 200, {"ok": True})
    else:
        await _send_json(send, 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error", "param": None, "code": None}})


def main(argv=None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(description="Scripted OpenAI-compatible upstream (test double for the LLM).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--log-level", default="warning")
    a = p.parse_args(argv)
    logging.getLogger("uvicorn.error").addFilter(_DropFilter())
    uvicorn.run(
        app, host=a.host, port=a.port, loop="uvloop", http="httptools", lifespan="on",
        log_level=a.log_level, access_log=False, timeout_keep_alive=60, backlog=4096,
    )


if __name__ == "__main__":
    main()
