"""Streaming runs: the raw SSE framing (event/data lines, event order, the done frame, the
content type), every event's payload against the OpenAPI schemas, the delta rules, and the
official SDK's stream helpers (AssistantEventHandler callbacks, final run/messages/steps)."""

from __future__ import annotations

import threading
import warnings

import httpx
import openai
import pytest
from openai import AssistantEventHandler

from openapi_schemas import assert_schema
from run_checks import (
    WEATHER_TOOL,
    check_event,
    create_assistant,
    create_thread,
    names,
    parse_sse,
    post_stream,
    run_steps,
    text_of,
    thread_messages,
    wait_for_assistant_message,
    wait_run,
)

PLAIN_ORDER = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
]
PLAIN_TAIL = ["thread.message.completed", "thread.run.step.completed", "thread.run.completed", "done"]


def _collapse_deltas(event_names: list[str]) -> list[str]:
    out: list[str] = []
    for name in event_names:
        if name.endswith(".delta") and out and out[-1] == name:
            continue
        out.append(name)
    return out


def test_raw_stream_of_a_plain_answer(http, upstream):
    text = "Héllo wörld — streamed in many small pieces 🙂"
    upstream.script({"text": text, "chunk_size": 3, "usage": {"prompt_tokens": 9, "completion_tokens": 11}})
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    with http.stream("POST", f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"], "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read()
    events, _ = parse_sse(body)
    for event in events:
        check_event(event.name, event.data)
    order = names(events)
    assert order[: len(PLAIN_ORDER)] == PLAIN_ORDER
    assert order[-len(PLAIN_TAIL):] == PLAIN_TAIL
    deltas = order[len(PLAIN_ORDER): -len(PLAIN_TAIL)]
    assert deltas and set(deltas) == {"thread.message.delta"}

    by_name = {e.name: e.data for e in events}
    run_id = by_name["thread.run.created"]["id"]
    assert by_name["thread.run.created"]["status"] == "queued"
    step = by_name["thread.run.step.created"]
    message = by_name["thread.message.created"]
    assert step["type"] == "message_creation" and step["step_details"]["message_creation"]["message_id"] == message["id"]
    assert message["content"] == [] and message["role"] == "assistant" and message["run_id"] == run_id

    # Deltas carry only new text, each part with its index; rebuilt they are the final text.
    pieces = []
    for event in events:
        if event.name == "thread.message.delta":
            assert event.data["id"] == message["id"]
            (part,) = event.data["delta"]["content"]
            assert part["index"] == 0 and part["type"] == "text"
            pieces.append(part["text"]["value"])
    assert len(pieces) > 1 and "".join(pieces) == text
    completed = by_name["thread.message.completed"]
    assert text_of(completed) == text and completed["status"] == "completed"
    assert by_name["thread.run.step.completed"]["usage"] == {"prompt_tokens": 9, "completion_tokens": 11, "total_tokens": 20}
    assert by_name["thread.run.completed"]["usage"] == {"prompt_tokens": 9, "completion_tokens": 11, "total_tokens": 20}

    # The events carry exactly what a GET returns.
    assert http.get(f"/threads/{thread['id']}/runs/{run_id}").json() == by_name["thread.run.completed"]
    assert http.get(f"/threads/{thread['id']}/messages/{message['id']}").json() == completed
    assert run_steps(http, thread["id"], run_id) == [by_name["thread.run.step.completed"]]


def test_raw_stream_of_create_and_run_starts_with_the_thread(http, upstream):
    assistant = create_assistant(http)
    events = post_stream(http, "/threads/runs", {
        "assistant_id": assistant["id"], "stream": True,
        "thread": {"messages": [{"role": "user", "content": "hi"}], "metadata": {"via": "stream"}},
    })
    order = names(events)
    assert order[0] == "thread.created"
    assert order[1: 1 + len(PLAIN_ORDER)] == PLAIN_ORDER and order[-len(PLAIN_TAIL):] == PLAIN_TAIL
    thread = events[0].data
    assert thread["metadata"] == {"via": "stream"}
    assert http.get(f"/threads/{thread['id']}").json() == thread
    assert events[1].data["thread_id"] == thread["id"]
    assert order.count("thread.created") == 1


def test_raw_stream_of_tool_calls_then_submit_stream(http, upstream):
    upstream.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}},
                        {"name": "get_weather", "arguments": {"city": "Rome"}}], "chunk_size": 4},
        {"text": "Sunny in both."},
    )
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather in Paris and Rome?")
    events = post_stream(http, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
    order = _collapse_deltas(names(events))
    assert order == [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta",
        "thread.run.requires_action", "done",
    ]
    step = next(e.data for e in events if e.name == "thread.run.step.created")
    assert step["type"] == "tool_calls" and step["step_details"] == {"type": "tool_calls", "tool_calls": []}

    # Delta rules: each call's id, type and name once (first delta), arguments as fragments,
    # an index on every entry.
    calls: dict[int, dict] = {}
    for event in events:
        if event.name != "thread.run.step.delta":
            continue
        assert event.data["id"] == step["id"]
        for entry in event.data["delta"]["step_details"]["tool_calls"]:
            index = entry["index"]
            if index not in calls:
                assert entry["id"].startswith("call_") and entry["type"] == "function"
                assert entry["function"]["name"] == "get_weather" and entry["function"]["output"] is None
                calls[index] = {"id": entry["id"], "arguments": entry["function"]["arguments"]}
            else:
                assert "id" not in entry and "name" not in entry["function"], entry
                calls[index]["arguments"] += entry["function"]["arguments"]
    assert sorted(calls) == [0, 1]
    required = events[-2].data["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [c["id"] for c in required] == [calls[0]["id"], calls[1]["id"]]
    assert [c["function"]["arguments"] for c in required] == [calls[0]["arguments"], calls[1]["arguments"]]
    assert calls[0]["arguments"] == '{"city":"Paris"}' and calls[1]["arguments"] == '{"city":"Rome"}'
    run_id = events[0].data["id"]

    outputs = [{"tool_call_id": calls[0]["id"], "output": "18C"}, {"tool_call_id": calls[1]["id"], "output": "24C"}]
    after = post_stream(http, f"/threads/{thread['id']}/runs/{run_id}/submit_tool_outputs", {"tool_outputs": outputs, "stream": True})
    order = _collapse_deltas(names(after))
    assert order == [
        "thread.run.step.completed", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
        "thread.message.in_progress", "thread.message.delta", "thread.message.completed",
        "thread.run.step.completed", "thread.run.completed", "done",
    ]
    tool_step = after[0].data
    assert tool_step["id"] == step["id"] and tool_step["status"] == "completed"
    assert [c["function"]["output"] for c in tool_step["step_details"]["tool_calls"]] == ["18C", "24C"]
    # No delta of the earlier stream's step is repeated in this one.
    assert all(e.data["id"] != step["id"] for e in after if e.name == "thread.run.step.delta")
    assert text_of(next(e.data for e in after if e.name == "thread.message.completed")) == "Sunny in both."


def test_stream_of_a_failed_run_ends_with_failed_and_done(http, upstream):
    upstream.script({"status": 500, "error": "the model crashed"})
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    events = post_stream(http, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
    assert names(events)[-2:] == ["thread.run.failed", "done"]
    failed = events[-2].data
    assert failed["last_error"]["code"] == "server_error" and failed["failed_at"] is not None


def test_errors_before_streaming_are_json(http, upstream):
    response = http.post("/threads/thread_missing/runs", json={"assistant_id": "asst_x", "stream": True})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert_schema(response.json(), "ErrorResponse")


def test_a_client_that_leaves_the_stream_does_not_stop_the_run(http, upstream):
    upstream.script({"text": "abcdefghij" * 10, "chunk_size": 2, "delay": 0.02})
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    with http.stream("POST", f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"], "stream": True}) as response:
        lines = response.iter_lines()
        first = next(lines)
        assert first == "event: thread.run.created"
        run_id = httpx.Response(200, content=next(lines)[len("data: "):]).json()["id"]
    run = wait_run(http, thread["id"], run_id)
    assert run["status"] == "completed"
    assert text_of(thread_messages(http, thread["id"])[-1]) == "abcdefghij" * 10


class RecordingHandler(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []
        self.text = ""
        self.tool_arguments: dict[str, str] = {}

    def on_event(self, event) -> None:
        self.calls.append(("event", event.event))

    def on_text_created(self, text) -> None:
        self.calls.append(("text_created", text.value))

    def on_text_delta(self, delta, snapshot) -> None:
        self.text += delta.value
        assert snapshot.value == self.text  # the SDK's snapshot is rebuilt from our deltas

    def on_text_done(self, text) -> None:
        self.calls.append(("text_done", text.value))

    def on_message_created(self, message) -> None:
        self.calls.append(("message_created", message.id))

    def on_message_done(self, message) -> None:
        self.calls.append(("message_done", message.content[0].text.value))

    def on_run_step_created(self, run_step) -> None:
        self.calls.append(("step_created", run_step.type))

    def on_run_step_done(self, run_step) -> None:
        self.calls.append(("step_done", run_step.type, run_step.status))

    def on_tool_call_created(self, tool_call) -> None:
        self.calls.append(("tool_call_created", tool_call.id, tool_call.function.name))

    def on_tool_call_delta(self, delta, snapshot) -> None:
        self.tool_arguments[snapshot.id] = snapshot.function.arguments

    def on_tool_call_done(self, tool_call) -> None:
        self.calls.append(("tool_call_done", tool_call.id, tool_call.function.arguments))

    def on_end(self) -> None:
        self.calls.append(("end",))

    def only(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]


def test_sdk_stream_with_an_event_handler(client, upstream):
    upstream.script({"text": "Streamed answer with several chunks.", "chunk_size": 5})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    handler = RecordingHandler()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as stream:
        stream.until_done()
        run = stream.get_final_run()
        messages = stream.get_final_messages()
        steps = stream.get_final_run_steps()
    assert run.status == "completed" and run.thread_id == thread.id
    assert [m.content[0].text.value for m in messages] == ["Streamed answer with several chunks."]
    # The SDK's step snapshots come from step.created and deltas only.
    assert [s.type for s in steps] == ["message_creation"]
    assert steps[0].step_details.message_creation.message_id == messages[0].id
    assert handler.text == "Streamed answer with several chunks."
    assert handler.only("text_created") == [("text_created", "Strea")]  # the SDK passes the first delta
    assert handler.only("text_done") == [("text_done", "Streamed answer with several chunks.")]
    assert handler.only("message_done") == [("message_done", "Streamed answer with several chunks.")]
    assert handler.only("step_done") == [("step_done", "message_creation", "completed")]
    assert handler.calls[-1] == ("end",)
    events = [c[1] for c in handler.only("event")]
    assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[-1] == "thread.run.completed"


def test_sdk_text_deltas_iterator(client, upstream):
    upstream.script({"text": "one two three four", "chunk_size": 4})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "count"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        assert "".join(stream.text_deltas) == "one two three four"


def test_sdk_create_with_stream_true_yields_typed_events(client, upstream):
    upstream.script({"text": "typed"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    stream = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, stream=True)
    events = list(stream)
    assert [e.event for e in events][:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[-1].event == "thread.run.completed" and events[-1].data.status == "completed"
    deltas = [e.data.delta.content[0].text.value for e in events if e.event == "thread.message.delta"]
    assert "".join(deltas) == "typed"


def test_sdk_create_and_run_stream_and_tool_round_trip(client, upstream):
    upstream.script(
        {"text": "Let me check.", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Lima"}}]},
        {"text": "It is 20C in Lima."},
    )
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    handler = RecordingHandler()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "weather in Lima?"}]}, event_handler=handler,
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert handler.only("event")[0] == ("event", "thread.created")
    assert run.status == "requires_action"
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Lima"}'
    # Text first, then the tool call, in one model turn: the message is finished before the step opens.
    kinds = [c[0] for c in handler.calls if c[0] != "event"]
    assert kinds.index("message_done") < kinds.index("tool_call_created")
    assert handler.only("message_done") == [("message_done", "Let me check.")]
    assert handler.only("tool_call_created") == [("tool_call_created", call.id, "get_weather")]
    assert handler.only("tool_call_done") == [("tool_call_done", call.id, '{"city":"Lima"}')]
    assert handler.tool_arguments[call.id] == '{"city":"Lima"}'

    second = RecordingHandler()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=run.thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "20C"}], event_handler=second,
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
        messages = stream.get_final_messages()
    assert final.status == "completed"
    assert [m.content[0].text.value for m in messages] == ["It is 20C in Lima."]
    assert second.text == "It is 20C in Lima."
    assert ("step_done", "tool_calls", "completed") in second.calls


def test_sdk_stream_helper_raises_on_a_bad_request(client, upstream):
    thread = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id="asst_missing") as stream:
            stream.until_done()


def test_a_run_cancelled_while_streaming_ends_the_stream_with_cancelled(http, upstream, server):
    upstream.script({"text": "word " * 200, "chunk_size": 5, "delay": 0.03})
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    result: dict = {}

    def consume():
        with httpx.Client(base_url=server.v1, timeout=30) as other:
            result["events"] = post_stream(other, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})

    reader = threading.Thread(target=consume)
    reader.start()
    message = wait_for_assistant_message(http, thread["id"])
    run_id = message["run_id"]
    assert http.post(f"/threads/{thread['id']}/runs/{run_id}/cancel").status_code == 200
    reader.join(30)
    order = names(result["events"])
    tail = order[order.index("thread.run.cancelling"):]
    assert [n for n in tail if n != "thread.message.delta"] == [
        "thread.run.cancelling", "thread.message.incomplete", "thread.run.step.cancelled", "thread.run.cancelled", "done",
    ]
    incomplete = next(e.data for e in result["events"] if e.name == "thread.message.incomplete")
    assert incomplete["incomplete_details"] == {"reason": "run_cancelled"}
    streamed = "".join(e.data["delta"]["content"][0]["text"]["value"] for e in result["events"] if e.name == "thread.message.delta")
    assert text_of(incomplete) == streamed  # what was streamed is what was kept
    assert http.get(f"/threads/{thread['id']}/messages/{message['id']}").json() == incomplete


def test_an_empty_answer_is_one_empty_text_part(client, http, upstream):
    upstream.script({"text": ""}, {"text": "second"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "say nothing"}])
    handler = RecordingHandler()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as stream:
        stream.until_done()
        assert stream.get_final_run().status == "completed"
        (message,) = stream.get_final_messages()
    assert [(p.type, p.text.value) for p in message.content] == [("text", "")]
    messages = thread_messages(http, thread.id)
    assert messages[-1]["content"] == [{"type": "text", "text": {"value": "", "annotations": []}}]
    # The next run's context carries the empty answer without breaking.
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="now talk")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"


def test_sdk_streams_across_several_tool_rounds(client, upstream):
    upstream.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Quito"}}]},
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Lima"}},
                        {"name": "get_weather", "arguments": {"city": "Cusco"}}]},
        {"text": "Quito 14C, Lima 20C, Cusco 9C."},
    )
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        run = stream.get_final_run()
    rounds = 0
    while run.status == "requires_action":
        rounds += 1
        calls = run.required_action.submit_tool_outputs.tool_calls
        outputs = [{"tool_call_id": c.id, "output": c.function.arguments} for c in calls]
        handler = RecordingHandler()
        with client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=thread.id, tool_outputs=outputs, event_handler=handler,
        ) as stream:
            stream.until_done()
            run = stream.get_final_run()
        if run.status == "requires_action":
            # A new tool step opened in this stream, its calls streamed with their names.
            assert [c[2] for c in handler.only("tool_call_created")] == ["get_weather", "get_weather"]
    assert rounds == 2 and run.status == "completed"
    assert handler.text == "Quito 14C, Lima 20C, Cusco 9C."
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc")
    assert [s.type for s in steps.data] == ["tool_calls", "tool_calls", "message_creation"]
    assert [c.function.output for c in steps.data[1].step_details.tool_calls] == ['{"city":"Lima"}', '{"city":"Cusco"}']


def test_sdk_poll_and_create_and_stream(client, upstream):
    upstream.script({"text": "polled"}, {"text": "streamed"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50).status == "completed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with client.beta.threads.runs.create_and_stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            stream.until_done()
            assert stream.get_final_run().status == "completed"
            assert stream.get_final_messages()[0].content[0].text.value == "streamed"
