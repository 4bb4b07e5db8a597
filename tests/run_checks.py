"""Checks shared by the run tests: reading an SSE body frame by frame (and failing on any
framing the SDK could not parse), validating every stream event against the OpenAPI
schemas, polling a run until it stops, and reading the raw JSON behind an SDK call."""

from __future__ import annotations

import threading

import time
from dataclasses import dataclass

import orjson

from openapi_schemas import assert_schema

TERMINAL = {"completed", "incomplete", "failed", "cancelled", "expired"}
STOPPED = TERMINAL | {"requires_action"}  # where a run waits for nobody but the client

# The status each lifecycle event announces, so a payload cannot contradict its name.
RUN_EVENT_STATUS = {
    "thread.run.created": "queued",
    "thread.run.queued": "queued",
    "thread.run.in_progress": "in_progress",
    "thread.run.requires_action": "requires_action",
    "thread.run.completed": "completed",
    "thread.run.incomplete": "incomplete",
    "thread.run.failed": "failed",
    "thread.run.cancelling": "cancelling",
    "thread.run.cancelled": "cancelled",
    "thread.run.expired": "expired",
}
STEP_EVENT_STATUS = {
    "thread.run.step.created": "in_progress",
    "thread.run.step.in_progress": "in_progress",
    "thread.run.step.completed": "completed",
    "thread.run.step.failed": "failed",
    "thread.run.step.cancelled": "cancelled",
    "thread.run.step.expired": "expired",
}
MESSAGE_EVENT_STATUS = {
    "thread.message.created": "in_progress",
    "thread.message.in_progress": "in_progress",
    "thread.message.completed": "completed",
    "thread.message.incomplete": "incomplete",
}
END_EVENTS = {"thread.run.requires_action"} | {f"thread.run.{s}" for s in TERMINAL}


@dataclass
class SseEvent:
    name: str
    data: dict | str  # parsed JSON, or the literal "[DONE]"


def parse_sse(raw: bytes) -> tuple[list[SseEvent], int]:
    """Split an SSE body into events, asserting the framing the Assistants stream uses:
    frames separated by a blank line, each either `:` comment lines (keep-alives) or exactly
    `event: NAME` + one `data: ONE-LINE-JSON` line; `done` / `[DONE]` last and only last.
    Returns the events and the number of keep-alive comments seen."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), f"stream does not end with a complete frame: {text[-200:]!r}"
    events: list[SseEvent] = []
    comments = 0
    for frame in text[:-2].split("\n\n"):
        lines = frame.split("\n")
        if all(line.startswith(":") for line in lines):
            comments += 1
            continue
        assert len(lines) == 2, f"a frame must be one event: line and one data: line, got {lines!r}"
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), f"bad frame {lines!r}"
        name, payload = lines[0][len("event: "):], lines[1][len("data: "):]
        assert not events or events[-1].name != "done", f"event {name} after done"
        if name == "done":
            assert payload == "[DONE]", f"done carries {payload!r}"
            events.append(SseEvent(name, payload))
            continue
        data = orjson.loads(payload)  # every other event's data must be JSON (the SDK parses it)
        assert isinstance(data, dict), f"{name} data is not an object"
        events.append(SseEvent(name, data))
    assert events and events[-1].name == "done", "stream did not end with event: done / data: [DONE]"
    return events, comments


def check_event(name: str, data) -> None:
    """Validate one event's payload against the schema its name calls for."""
    if name == "done":
        assert data == "[DONE]"
        return
    assert_schema({"event": name, "data": data}, "AssistantStreamEvent")
    if name == "thread.created":
        assert_schema(data, "ThreadObject")
    elif name == "thread.run.step.delta":
        assert_schema(data, "RunStepDeltaObject")
        for entry in data["delta"]["step_details"].get("tool_calls") or ():
            assert "index" in entry, f"tool call delta without index: {entry}"
    elif name in STEP_EVENT_STATUS:
        assert_schema(data, "RunStepObject")
        assert data["status"] == STEP_EVENT_STATUS[name], f"{name} carries a step in {data['status']}"
    elif name in RUN_EVENT_STATUS:
        assert_schema(data, "RunObject")
        assert data["status"] == RUN_EVENT_STATUS[name], f"{name} carries a run in {data['status']}"
    elif name == "thread.message.delta":
        assert_schema(data, "MessageDeltaObject")
        for part in data["delta"].get("content") or ():
            assert "index" in part, f"message delta part without index: {part}"
    elif name in MESSAGE_EVENT_STATUS:
        assert_schema(data, "MessageObject")
        assert data["status"] == MESSAGE_EVENT_STATUS[name], f"{name} carries a message in {data['status']}"
    elif name == "error":
        assert "error" in data and data["error"].get("message"), data
    else:
        raise AssertionError(f"unknown event {name}")


def read_stream(response) -> list[SseEvent]:
    """An httpx streaming response to an Assistants SSE endpoint, read to the end, each event
    checked; asserts the status, the content type and that the stream stops right after the
    run stops (terminal or requires_action), with `done`."""
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream"), response.headers["content-type"]
    events, _ = parse_sse(response.read())
    for event in events:
        check_event(event.name, event.data)
    run_events = [i for i, e in enumerate(events) if e.name in END_EVENTS]
    assert run_events, "the stream never reported the run stopping"
    assert run_events[0] == len(events) - 2, f"events after the run stopped: {[e.name for e in events[run_events[0]:]]}"
    return events


def post_stream(http, path: str, body: dict) -> list[SseEvent]:
    with http.stream("POST", path, json=body) as response:
        return read_stream(response)


class BackgroundStream:
    """A streamed POST read to its end in a thread, while the test does other things.
    `events` is None until the stream ended."""

    def __init__(self, http, path: str, body: dict):
        self.events: list[SseEvent] | None = None
        self._thread = threading.Thread(target=self._read, args=(http, path, body), daemon=True)
        self._thread.start()

    def _read(self, http, path, body) -> None:
        self.events = post_stream(http, path, body)

    def wait(self, timeout: float) -> list[SseEvent] | None:
        self._thread.join(timeout)
        return self.events


def names(events: list[SseEvent]) -> list[str]:
    return [e.name for e in events]


def wait_run(http, thread_id: str, run_id: str, until=STOPPED, timeout: float = 30.0) -> dict:
    """GET the run until its status is in `until`; the body is validated each time."""
    deadline = time.monotonic() + timeout
    while True:
        run = assert_schema(http.get(f"/threads/{thread_id}/runs/{run_id}").json(), "RunObject")
        if run["status"] in until:
            return run
        assert run["status"] not in TERMINAL, f"run ended {run['status']}, expected {sorted(until)}: {run}"
        assert time.monotonic() < deadline, f"run still {run['status']} after {timeout}s"
        time.sleep(0.05)


def raw(call, *args, **kwargs):
    """Call an SDK `with_raw_response` method: returns (SDK object, raw JSON body)."""
    response = call(*args, **kwargs)
    return response.parse(), response.http_response.json()


def check_tool_pairs(messages: list[dict]) -> None:
    """A model must never see a tool call without its output, nor an output without its call."""
    for i, message in enumerate(messages):
        if message.get("tool_calls"):
            ids = [c["id"] for c in message["tool_calls"]]
            following = [m.get("tool_call_id") for m in messages[i + 1 : i + 1 + len(ids)]]
            assert following == ids, f"tool calls {ids} not followed by their outputs: {messages[i + 1:]}"
        if message["role"] == "tool":
            owner = [m for m in messages[:i] if any(c["id"] == message["tool_call_id"] for c in m.get("tool_calls") or ())]
            assert owner, f"tool output {message['tool_call_id']} without its call"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def create_assistant(http, **fields) -> dict:
    body = {"model": "gpt-4o", **fields}
    response = http.post("/assistants", json=body)
    assert response.status_code == 200, response.text
    return assert_schema(response.json(), "AssistantObject")


def create_thread(http, *texts: str, **fields) -> dict:
    body = {"messages": [{"role": "user", "content": t} for t in texts], **fields}
    response = http.post("/threads", json=body)
    assert response.status_code == 200, response.text
    return assert_schema(response.json(), "ThreadObject")


def start_run(http, thread_id: str, **fields) -> dict:
    response = http.post(f"/threads/{thread_id}/runs", json=fields)
    assert response.status_code == 200, response.text
    return assert_schema(response.json(), "RunObject")


def thread_messages(http, thread_id: str, order: str = "asc") -> list[dict]:
    body = http.get(f"/threads/{thread_id}/messages", params={"order": order, "limit": 100}).json()
    assert_schema(body, "ListMessagesResponse")
    return body["data"]


def run_steps(http, thread_id: str, run_id: str) -> list[dict]:
    body = http.get(f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc"}).json()
    assert_schema(body, "ListRunStepsResponse")
    return body["data"]


def text_of(message: dict) -> str:
    return "".join(p["text"]["value"] for p in message["content"] if p["type"] == "text")


def wait_for_assistant_message(http, thread_id: str, timeout: float = 20.0) -> dict:
    """Wait until the run is visibly writing: its assistant message exists, in progress."""
    deadline = time.monotonic() + timeout
    while True:
        messages = thread_messages(http, thread_id)
        if messages and messages[-1]["role"] == "assistant":
            assert messages[-1]["status"] == "in_progress", messages[-1]
            return messages[-1]
        assert time.monotonic() < deadline, "the model never started writing"
        time.sleep(0.05)
