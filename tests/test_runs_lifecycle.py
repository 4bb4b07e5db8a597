"""The run lifecycle through the official SDK and raw HTTP: create, poll, list, retrieve,
update, cancel, thread-and-run, steps; the status machine with its timestamps, usage and
effective values; one active run per thread. Every body is checked against the OpenAPI
schemas."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from openapi_schemas import assert_schema
from run_checks import (
    WEATHER_TOOL,
    create_assistant,
    create_thread,
    raw,
    run_steps,
    start_run,
    text_of,
    thread_messages,
    wait_for_assistant_message,
    wait_run,
)


def test_create_returns_queued_while_the_model_is_still_busy(http, upstream):
    # The model does not answer for a minute: the create must not wait for it.
    upstream.script({"text": "far too late", "first_delay": 60})
    assistant = create_assistant(http)
    thread = create_thread(http, "hello")
    response = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]})
    assert response.status_code == 200
    run = assert_schema(response.json(), "RunObject")
    assert run["status"] == "queued"
    assert response.headers["openai-poll-after-ms"].isdigit()  # create_and_poll takes its interval from it
    assert run["object"] == "thread.run" and run["id"].startswith("run_")
    assert run["thread_id"] == thread["id"] and run["assistant_id"] == assistant["id"]
    assert run["started_at"] is None and run["completed_at"] is None and run["usage"] is None
    assert run["expires_at"] == run["created_at"] + 600
    # The run is executing in the background, waiting on the model.
    running = wait_run(http, thread["id"], run["id"], until={"in_progress"})
    assert running["started_at"] is not None and running["usage"] is None
    assert len(upstream.requests()) == 1
    http.post(f"/threads/{thread['id']}/runs/{run['id']}/cancel")
    assert wait_run(http, thread["id"], run["id"])["status"] == "cancelled"


def test_a_completed_run_has_its_timestamps_and_usage(http, upstream):
    upstream.script({"text": "Done.", "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
    assistant = create_assistant(http)
    thread = create_thread(http, "hello")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    done = wait_run(http, thread["id"], run["id"])
    assert done["status"] == "completed"
    assert done["created_at"] <= done["started_at"] <= done["completed_at"]
    assert done["expires_at"] is None and done["last_error"] is None and done["incomplete_details"] is None
    assert done["failed_at"] is None and done["cancelled_at"] is None and done["required_action"] is None
    assert done["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    # A finished run's GET carries no poll hint.
    assert "openai-poll-after-ms" not in http.get(f"/threads/{thread['id']}/runs/{run['id']}").headers


def test_create_and_poll_then_messages_and_steps(client, http, upstream):
    upstream.script({"text": "Bonjour tout le monde", "usage": {"prompt_tokens": 12, "completion_tokens": 5}})
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Answer in French.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    assert run.usage.prompt_tokens == 12 and run.usage.completion_tokens == 5 and run.usage.total_tokens == 17

    messages = client.beta.threads.messages.list(thread_id=thread.id)
    reply = messages.data[0]
    assert reply.role == "assistant" and reply.content[0].text.value == "Bonjour tout le monde"
    assert reply.run_id == run.id and reply.assistant_id == assistant.id and reply.status == "completed"
    for body in thread_messages(http, thread.id):
        assert_schema(body, "MessageObject")
    assert [m["role"] for m in thread_messages(http, thread.id)] == ["user", "assistant"]
    assert [m["id"] for m in thread_messages(http, thread.id)][1] == reply.id
    only_run = http.get(f"/threads/{thread.id}/messages", params={"run_id": run.id}).json()
    assert [m["id"] for m in only_run["data"]] == [reply.id]

    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    assert len(steps.data) == 1
    step = steps.data[0]
    assert step.type == "message_creation" and step.status == "completed"
    assert step.step_details.message_creation.message_id == reply.id
    assert step.usage.prompt_tokens == 12 and step.usage.completion_tokens == 5
    raw_steps = run_steps(http, thread.id, run.id)
    assert raw_steps[0]["completed_at"] is not None and raw_steps[0]["run_id"] == run.id
    fetched, body = raw(client.beta.threads.runs.steps.with_raw_response.retrieve, step.id, thread_id=thread.id, run_id=run.id)
    assert_schema(body, "RunStepObject")
    assert fetched.id == step.id and body == raw_steps[0]


def test_effective_values_come_from_the_assistant(http, upstream):
    assistant = create_assistant(
        http, model="assistant-model", instructions="Be brief.", tools=[WEATHER_TOOL],
        temperature=0.3, top_p=0.8, response_format={"type": "json_object"},
    )
    thread = create_thread(http, "hi")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    assert run["model"] == "assistant-model"
    assert run["instructions"] == "Be brief."
    assert run["tools"] == assistant["tools"] and run["tools"][0]["function"]["name"] == "get_weather"
    assert run["temperature"] == 0.3 and run["top_p"] == 0.8
    assert run["response_format"] == {"type": "json_object"}
    assert run["tool_choice"] == "auto" and run["parallel_tool_calls"] is True
    assert run["truncation_strategy"] == {"type": "auto", "last_messages": None}
    assert run["max_prompt_tokens"] is None and run["max_completion_tokens"] is None
    assert run["metadata"] == {}
    wait_run(http, thread["id"], run["id"])


def test_effective_values_take_the_runs_overrides(http, upstream):
    assistant = create_assistant(http, model="assistant-model", instructions="Be brief.", temperature=0.3)
    thread = create_thread(http, "hi")
    other_tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    # The model answers with a call to the forced function; the run waits for its output.
    upstream.script({"tool_calls": [{"name": "lookup", "arguments": {}}]})
    run = start_run(
        http, thread["id"], assistant_id=assistant["id"],
        model="override-model", instructions="Be verbose.", additional_instructions="Mention the weather.",
        tools=[other_tool], temperature=1.5, top_p=0.5, response_format={"type": "text"},
        tool_choice={"type": "function", "function": {"name": "lookup"}}, parallel_tool_calls=False,
        truncation_strategy={"type": "last_messages", "last_messages": 3},
        max_prompt_tokens=5000, max_completion_tokens=700, metadata={"k": "v"},
    )
    assert run["model"] == "override-model"
    assert run["instructions"].startswith("Be verbose.") and run["instructions"].endswith("Mention the weather.")
    assert "Be brief." not in run["instructions"]
    assert [t["function"]["name"] for t in run["tools"]] == ["lookup"]
    assert run["temperature"] == 1.5 and run["top_p"] == 0.5
    assert run["response_format"] == {"type": "text"}
    assert run["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert run["parallel_tool_calls"] is False
    assert run["truncation_strategy"] == {"type": "last_messages", "last_messages": 3}
    assert run["max_prompt_tokens"] == 5000 and run["max_completion_tokens"] == 700
    assert run["metadata"] == {"k": "v"}
    waiting = wait_run(http, thread["id"], run["id"])
    for field in ("model", "instructions", "tools", "temperature", "top_p", "response_format", "tool_choice",
                  "parallel_tool_calls", "truncation_strategy", "max_prompt_tokens", "max_completion_tokens", "metadata"):
        assert waiting[field] == run[field], field
    http.post(f"/threads/{thread['id']}/runs/{run['id']}/cancel")
    wait_run(http, thread["id"], run["id"], until={"cancelled"})


def test_list_retrieve_update_and_not_found(client, http, upstream):
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one"}])
    ids = []
    for _ in range(3):
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
        assert run.status == "completed"
        ids.append(run.id)

    page, body = raw(client.beta.threads.runs.with_raw_response.list, thread_id=thread.id, limit=2)
    assert_schema(body, "ListRunsResponse")
    assert [r.id for r in page.data] == ids[::-1][:2] and body["has_more"] is True
    assert [r.id for r in client.beta.threads.runs.list(thread_id=thread.id, order="asc")] == ids
    assert [r.id for r in client.beta.threads.runs.list(thread_id=thread.id, limit=1)] == ids[::-1]  # auto-paging
    after = client.beta.threads.runs.list(thread_id=thread.id, order="asc", after=ids[0])
    assert [r.id for r in after.data] == ids[1:]

    fetched, body = raw(client.beta.threads.runs.with_raw_response.retrieve, ids[1], thread_id=thread.id)
    assert_schema(body, "RunObject")
    assert fetched.id == ids[1] and fetched.status == "completed"

    updated, body = raw(client.beta.threads.runs.with_raw_response.update, ids[1], thread_id=thread.id, metadata={"a": "1"})
    assert_schema(body, "RunObject")
    assert updated.metadata == {"a": "1"} and body["status"] == "completed"
    assert client.beta.threads.runs.retrieve(ids[1], thread_id=thread.id).metadata == {"a": "1"}
    # Everything else of the run is untouched by the update.
    before = http.get(f"/threads/{thread.id}/runs/{ids[2]}").json()
    http.post(f"/threads/{thread.id}/runs/{ids[2]}", json={"metadata": {"b": "2"}})
    after_update = http.get(f"/threads/{thread.id}/runs/{ids[2]}").json()
    assert {k: v for k, v in after_update.items() if k != "metadata"} == {k: v for k, v in before.items() if k != "metadata"}

    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id)
    assert err.value.body["message"] == "No run found with id 'run_missing'."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve(ids[0], thread_id=client.beta.threads.create().id)  # another thread's run
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.retrieve("step_missing", thread_id=thread.id, run_id=ids[0])
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_missing")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id="thread_missing", assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=10)


def test_create_and_run_and_create_and_run_poll(client, http, upstream):
    upstream.script({"text": "first"}, {"text": "second"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    run, body = raw(
        client.beta.threads.with_raw_response.create_and_run,
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "hi there"}], "metadata": {"t": "1"}},
        metadata={"r": "1"},
    )
    assert_schema(body, "RunObject")
    assert run.status == "queued" and run.metadata == {"r": "1"}
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"t": "1"}
    assert wait_run(http, run.thread_id, run.id)["status"] == "completed"
    assert [text_of(m) for m in thread_messages(http, run.thread_id)] == ["hi there", "first"]

    polled = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "again"}]}, poll_interval_ms=50
    )
    assert polled.status == "completed" and polled.thread_id != run.thread_id
    assert [text_of(m) for m in thread_messages(http, polled.thread_id)] == ["again", "second"]


def test_create_and_run_with_an_unknown_assistant_is_404(http, upstream):
    response = http.post("/threads/runs", json={"assistant_id": "asst_missing", "thread": {"metadata": {"x": "1"}}})
    assert response.status_code == 404
    assert_schema(response.json(), "ErrorResponse")
    assert response.json()["error"]["message"] == "No assistant found with id 'asst_missing'."
    assert upstream.requests() == []


def test_one_active_run_per_thread(client, http, upstream):
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather?")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    assert wait_run(http, thread["id"], run["id"])["status"] == "requires_action"

    second = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]})
    assert second.status_code == 400
    assert_schema(second.json(), "ErrorResponse")
    assert second.json()["error"]["message"] == f"Thread {thread['id']} already has an active run {run['id']}."
    message = http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "more"})
    assert message.status_code == 400
    assert message.json()["error"]["message"] == f"Can't add messages to {thread['id']} while a run {run['id']} is active."
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(thread_id=thread["id"], assistant_id=assistant["id"])
    # Nothing of the refused calls was written.
    assert len(thread_messages(http, thread["id"])) == 1
    assert len(http.get(f"/threads/{thread['id']}/runs").json()["data"]) == 1

    http.post(f"/threads/{thread['id']}/runs/{run['id']}/cancel")
    wait_run(http, thread["id"], run["id"], until={"cancelled"})
    assert http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "more"}).status_code == 200
    again = start_run(http, thread["id"], assistant_id=assistant["id"])
    assert wait_run(http, thread["id"], again["id"])["status"] == "completed"


def test_cancel_while_waiting_for_tool_outputs(client, http, upstream):
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]})
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather?")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    assert wait_run(http, thread["id"], run["id"])["status"] == "requires_action"

    cancelling, body = raw(client.beta.threads.runs.with_raw_response.cancel, run["id"], thread_id=thread["id"])
    assert_schema(body, "RunObject")
    assert cancelling.status == "cancelling"
    ended = wait_run(http, thread["id"], run["id"], until={"cancelled"})
    assert ended["cancelled_at"] is not None and ended["required_action"] is None
    assert ended["completed_at"] is None and ended["failed_at"] is None
    step = run_steps(http, thread["id"], run["id"])[-1]
    assert step["type"] == "tool_calls" and step["status"] == "cancelled" and step["cancelled_at"] is not None
    assert len(upstream.requests()) == 1  # the model is not called again

    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.cancel(run["id"], thread_id=thread["id"])
    assert err.value.body["message"].startswith("Cannot cancel run")
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.submit_tool_outputs(
            run["id"], thread_id=thread["id"], tool_outputs=[{"tool_call_id": "call_x", "output": "x"}])
    assert err.value.body["message"] == 'Runs in status "cancelled" do not accept tool outputs.'


def test_cancel_while_the_model_is_writing(client, http, upstream):
    upstream.script({"text": "word " * 200, "chunk_size": 5, "delay": 0.05})
    assistant = create_assistant(http)
    thread = create_thread(http, "write a lot")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    wait_for_assistant_message(http, thread["id"])
    response = http.post(f"/threads/{thread['id']}/runs/{run['id']}/cancel")
    assert response.status_code == 200
    assert assert_schema(response.json(), "RunObject")["status"] == "cancelling"
    ended = wait_run(http, thread["id"], run["id"], until={"cancelled"})
    assert ended["cancelled_at"] is not None
    message = thread_messages(http, thread["id"])[-1]
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_cancelled"}
    assert message["incomplete_at"] is not None
    assert len(text_of(message)) < len("word " * 200)
    step = run_steps(http, thread["id"], run["id"])[0]
    assert step["status"] == "cancelled" and step["cancelled_at"] is not None


def test_cancel_right_after_create(client, http, upstream):
    """Cancel lands while the run is queued or has just started: either way it ends cancelled."""
    upstream.script({"text": "late", "first_delay": 30})  # the cancel always lands first
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    cancelling = client.beta.threads.runs.cancel(run["id"], thread_id=thread["id"])
    assert cancelling.status == "cancelling"
    ended = wait_run(http, thread["id"], run["id"])
    assert ended["status"] == "cancelled"
    assert ended["completed_at"] is None
    # The thread is free again.
    assert http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "next"}).status_code == 200


def test_cancel_a_finished_run_is_refused(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    wait_run(http, thread["id"], run["id"], until={"completed"})
    # The SDK's cancel: a POST without body or content type.
    response = http.post(f"/threads/{thread['id']}/runs/{run['id']}/cancel")
    assert response.status_code == 400
    assert_schema(response.json(), "ErrorResponse")
    assert response.json()["error"]["message"].startswith("Cannot cancel run")
    assert http.get(f"/threads/{thread['id']}/runs/{run['id']}").json()["status"] == "completed"


def test_deleting_a_thread_removes_its_runs(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    wait_run(http, thread["id"], run["id"])
    assert http.delete(f"/threads/{thread['id']}").json()["deleted"] is True
    assert http.get(f"/threads/{thread['id']}/runs/{run['id']}").status_code == 404


def test_metadata_updated_while_the_model_writes_is_kept(http, upstream):
    upstream.script({"text": "word " * 60, "chunk_size": 5, "delay": 0.05})
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    run = start_run(http, thread["id"], assistant_id=assistant["id"], metadata={"v": "1"})
    wait_for_assistant_message(http, thread["id"])
    response = http.post(f"/threads/{thread['id']}/runs/{run['id']}", json={"metadata": {"v": "2"}})
    assert response.status_code == 200
    assert assert_schema(response.json(), "RunObject")["metadata"] == {"v": "2"}
    done = wait_run(http, thread["id"], run["id"])
    assert done["status"] == "completed"
    assert done["metadata"] == {"v": "2"}


def test_concurrent_creates_on_one_thread_start_one_run(server, http, upstream):
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "hi")

    def create(_):
        with httpx.Client(base_url=server.v1, timeout=30) as h:
            return h.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(create, range(8)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 7
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    runs = http.get(f"/threads/{thread['id']}/runs").json()["data"]
    assert [r["id"] for r in runs] == [winner["id"]]
    assert wait_run(http, thread["id"], winner["id"])["status"] == "requires_action"
    http.post(f"/threads/{thread['id']}/runs/{winner['id']}/cancel")
    wait_run(http, thread["id"], winner["id"], until={"cancelled"})


def test_steps_accept_the_include_parameter(client, http, upstream):
    include = ["step_details.tool_calls[*].file_search.results[*].content"]
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, include=include, poll_interval_ms=50)
    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, include=include)
    assert len(steps.data) == 1
    step = client.beta.threads.runs.steps.retrieve(steps.data[0].id, run_id=run.id, thread_id=thread.id, include=include)
    assert step.id == steps.data[0].id
    assert http.get(f"/threads/{thread.id}/runs/{run.id}/steps", params={"limit": 101}).status_code == 400
    assert http.get("/threads/thread_missing/runs").status_code == 404


@pytest.mark.parametrize("fields, param", [
    ({"tool_choice": {"type": "function", "function": {"name": "not_a_tool"}}}, "tool_choice.function.name"),
    ({"tool_choice": "required", "tools": []}, "tool_choice"),
    ({"truncation_strategy": {"type": "last_messages", "last_messages": 0}}, "truncation_strategy.last_messages"),
    ({"temperature": 2.5}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_prompt_tokens": 255}, "max_prompt_tokens"),
    ({"max_completion_tokens": 100}, "max_completion_tokens"),
    ({"tools": [WEATHER_TOOL] * 21}, "tools"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
])
def test_bad_run_parameters_are_400_and_write_nothing(http, upstream, fields, param):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "hi")
    response = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"], **fields})
    assert response.status_code == 400, response.text
    error = assert_schema(response.json(), "ErrorResponse")["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert http.get(f"/threads/{thread['id']}/runs").json()["data"] == []
    assert upstream.requests() == []


def test_a_cancel_racing_the_first_text_never_leaves_parts_in_progress(client, http, upstream):
    """Cancels landing 0-0.4 s after create, around the moment the first text arrives:
    whatever the timing, the run's message ends incomplete and its steps cancelled."""
    import time as _time

    assistant = client.beta.assistants.create(model="gpt-4o")
    upstream.default({"text": "streaming text " * 40, "chunk_size": 4, "delay": 0.01, "first_delay": 0.05})
    outcomes = []
    for i in range(24):
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        _time.sleep(i * 0.4 / 24)
        try:
            client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
        except Exception:
            pass  # it finished first
        outcomes.append((thread.id, run.id))
    for thread_id, run_id in outcomes:
        deadline = _time.monotonic() + 20
        while True:
            run = client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)
            if run.status in ("cancelled", "completed") or _time.monotonic() > deadline:
                break
            _time.sleep(0.05)
        assert run.status in ("cancelled", "completed"), run.status
        steps = http.get(f"/threads/{thread_id}/runs/{run_id}/steps").json()["data"]
        messages = http.get(f"/threads/{thread_id}/messages", params={"run_id": run_id}).json()["data"]
        assert all(s["status"] != "in_progress" for s in steps), steps
        assert all(m["status"] != "in_progress" for m in messages), messages
        if run.status == "cancelled":
            assert all(m["status"] == "incomplete" and m["incomplete_details"] == {"reason": "run_cancelled"} for m in messages)
            assert all(s["status"] == "cancelled" for s in steps)
