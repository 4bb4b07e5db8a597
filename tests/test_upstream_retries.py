"""A busy or quirky model server: 429/503 are retried (honouring Retry-After) before a run
fails; a stream the server drops fails the run with words a user understands; a server
that cannot stream tool calls is asked again without streaming. The scripted upstream
stands in for the model server."""

from __future__ import annotations

import time

from run_checks import wait_run


def _run(http, upstream, *replies, tools=None):
    upstream.script(*replies)
    assistant = http.post("/assistants", json={"model": "gpt-4o", "tools": tools or []}).json()
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]}).json()
    started = time.monotonic()
    run = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}).json()
    return wait_run(http, thread["id"], run["id"]), time.monotonic() - started


def test_a_429_with_retry_after_is_retried(http, upstream):
    run, took = _run(http, upstream, {"status": 429, "error": "slow down", "headers": {"Retry-After": "1"}}, {"text": "fine"})
    assert run["status"] == "completed", run["last_error"]
    assert took >= 1.0
    assert len(upstream.requests()) == 2


def test_503_then_success(http, upstream):
    run, _ = _run(http, upstream, {"status": 503, "error": "warming up"}, {"text": "fine"})
    assert run["status"] == "completed", run["last_error"]


def test_retries_are_bounded(http, upstream):
    busy = {"status": 429, "error": "slow down", "headers": {"retry-after-ms": "100"}}
    run, _ = _run(http, upstream, busy, busy, busy, busy, {"text": "never reached"})
    assert run["status"] == "failed"
    assert run["last_error"]["code"] == "rate_limit_exceeded" and "slow down" in run["last_error"]["message"]
    assert len(upstream.requests()) == 4  # the first try and three more


def test_a_dropped_stream_is_explained_in_plain_words(http, upstream):
    run, _ = _run(http, upstream, {"text": "a long answer " * 20, "chunk_size": 3, "drop": 6})
    assert run["status"] == "failed"
    message = run["last_error"]["message"]
    assert "closed the connection" in message or "ended before the answer" in message, message
    assert "ClientPayloadError" not in message and "TransferEncodingError" not in message


def test_a_server_that_cannot_stream_tool_calls_is_asked_without_streaming(http, upstream):
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    run, _ = _run(
        http, upstream,
        {"status": 500, "error": "Automatic streaming tool choice is not supported"},
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        tools=[weather],
    )
    assert run["status"] == "requires_action", run["last_error"]
    (call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and '"Oslo"' in call["function"]["arguments"]
    first, second = upstream.requests()[-2:]
    assert first["stream"] is True and second["stream"] is False
