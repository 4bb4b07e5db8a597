"""Function tools: the model's tool calls become a tool_calls step and requires_action;
submitted outputs fill the step and the run goes on, as many rounds as the model wants."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from openapi_schemas import assert_schema
from run_checks import (
    WEATHER_TOOL,
    check_tool_pairs,
    create_assistant,
    create_thread,
    raw,
    run_steps,
    start_run,
    text_of,
    thread_messages,
    wait_run,
)

TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}


def _required_calls(run: dict) -> list[dict]:
    assert run["status"] == "requires_action"
    assert run["required_action"]["type"] == "submit_tool_outputs"
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    for call in calls:
        assert_schema(call, "RunToolCallObject")
    return calls


def test_one_call_round_trip_with_the_sdk(client, http, upstream):
    upstream.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}], "chunk_size": 3,
         "usage": {"prompt_tokens": 30, "completion_tokens": 7}},
        {"text": "It is sunny in Paris.", "usage": {"prompt_tokens": 45, "completion_tokens": 6}},
    )
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "requires_action"
    body = http.get(f"/threads/{thread.id}/runs/{run.id}").json()
    assert_schema(body, "RunObject")
    (call,) = _required_calls(body)
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}  # streamed in fragments
    assert body["usage"] is None  # not terminal yet

    (step,) = run_steps(http, thread.id, run.id)
    assert step["type"] == "tool_calls" and step["status"] == "in_progress" and step["usage"] is None
    assert step["step_details"]["tool_calls"] == [
        {"id": call["id"], "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}', "output": None}}
    ]
    # The thread is locked while the run waits.
    assert http.post(f"/threads/{thread.id}/messages", json={"role": "user", "content": "x"}).status_code == 400

    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call["id"], "output": "22C, sunny"}], poll_interval_ms=50,
    )
    assert done.status == "completed"
    assert done.usage.prompt_tokens == 75 and done.usage.completion_tokens == 13
    steps = run_steps(http, thread.id, run.id)
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]
    tool_step = steps[0]
    assert tool_step["status"] == "completed" and tool_step["completed_at"] is not None
    assert tool_step["step_details"]["tool_calls"][0]["function"]["output"] == "22C, sunny"
    assert tool_step["usage"] == {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}
    assert steps[1]["usage"] == {"prompt_tokens": 45, "completion_tokens": 6, "total_tokens": 51}
    assert text_of(thread_messages(http, thread.id)[-1]) == "It is sunny in Paris."

    # What the model saw on its second turn: its call, then the output, in chat-completions shape.
    second = upstream.requests()[1]["messages"]
    assert second[-2] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": call["id"], "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
    }
    assert second[-1] == {"role": "tool", "tool_call_id": call["id"], "content": "22C, sunny"}
    check_tool_pairs(second)


def test_parallel_calls_must_all_be_answered(client, http, upstream):
    upstream.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}},
                        {"name": "get_time", "arguments": {"tz": "CET"}},
                        {"name": "get_weather", "arguments": {"city": "Bergen"}}]},
        {"text": "Done."},
    )
    assistant = create_assistant(http, tools=[WEATHER_TOOL, TIME_TOOL])
    thread = create_thread(http, "weather and time")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    calls = _required_calls(wait_run(http, thread["id"], run["id"]))
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time", "get_weather"]
    assert len({c["id"] for c in calls}) == 3
    ids = [c["id"] for c in calls]
    url = f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs"

    missing = http.post(url, json={"tool_outputs": [{"tool_call_id": ids[0], "output": "a"}, {"tool_call_id": ids[1], "output": "b"}]})
    assert missing.status_code == 400
    assert_schema(missing.json(), "ErrorResponse")
    assert missing.json()["error"]["message"] == f"Expected tool outputs for call_ids {ids}, got {ids[:2]}"
    unknown = http.post(url, json={"tool_outputs": [{"tool_call_id": i, "output": "x"} for i in [*ids, "call_other"]]})
    assert unknown.status_code == 400
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(run["id"], thread_id=thread["id"], tool_outputs=[])
    # Refused submissions change nothing.
    still = wait_run(http, thread["id"], run["id"])
    assert still["status"] == "requires_action" and _required_calls(still) == calls
    assert len(upstream.requests()) == 1

    # Outputs in any order are matched by call id.
    queued, body = raw(
        client.beta.threads.runs.with_raw_response.submit_tool_outputs, run["id"], thread_id=thread["id"],
        tool_outputs=[{"tool_call_id": ids[2], "output": "8C"}, {"tool_call_id": ids[0], "output": "5C"}, {"tool_call_id": ids[1], "output": "12:00"}],
    )
    assert_schema(body, "RunObject")
    assert queued.status == "queued" and body["required_action"] is None
    assert wait_run(http, thread["id"], run["id"])["status"] == "completed"
    step = run_steps(http, thread["id"], run["id"])[0]
    assert [c["function"]["output"] for c in step["step_details"]["tool_calls"]] == ["5C", "12:00", "8C"]
    sent = upstream.requests()[1]["messages"]
    check_tool_pairs(sent)
    assert [m["content"] for m in sent if m["role"] == "tool"] == ["5C", "12:00", "8C"]

    again = http.post(url, json={"tool_outputs": [{"tool_call_id": i, "output": "x"} for i in ids]})
    assert again.status_code == 400
    assert again.json()["error"]["message"] == 'Runs in status "completed" do not accept tool outputs.'


def test_several_rounds_of_tool_calls(http, upstream):
    upstream.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Nice"}}]},
        {"tool_calls": [{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]},
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Lyon"}}]},
        {"text": "All done."},
    )
    assistant = create_assistant(http, tools=[WEATHER_TOOL, TIME_TOOL])
    thread = create_thread(http, "plan my day")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    outputs = []
    for round_ in range(3):
        (call,) = _required_calls(wait_run(http, thread["id"], run["id"]))
        outputs.append(f"out-{round_}")
        response = http.post(f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
                             json={"tool_outputs": [{"tool_call_id": call["id"], "output": outputs[-1]}]})
        assert response.status_code == 200
        assert assert_schema(response.json(), "RunObject")["status"] == "queued"
    final = wait_run(http, thread["id"], run["id"])
    assert final["status"] == "completed" and final["required_action"] is None
    steps = run_steps(http, thread["id"], run["id"])
    assert [s["type"] for s in steps] == ["tool_calls"] * 3 + ["message_creation"]
    assert all(s["status"] == "completed" for s in steps)
    last = upstream.requests()[-1]["messages"]
    check_tool_pairs(last)
    assert [m["content"] for m in last if m["role"] == "tool"] == outputs  # every round, in order


def test_text_and_a_tool_call_in_one_model_turn(http, upstream):
    upstream.script(
        {"text": "Checking the weather.", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Bern"}}]},
        {"text": "Bern: 15C."},
    )
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather in Bern?")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    (call,) = _required_calls(wait_run(http, thread["id"], run["id"]))
    steps = run_steps(http, thread["id"], run["id"])
    assert [(s["type"], s["status"]) for s in steps] == [("message_creation", "completed"), ("tool_calls", "in_progress")]
    messages = thread_messages(http, thread["id"])
    assert messages[-1]["status"] == "completed" and text_of(messages[-1]) == "Checking the weather."
    http.post(f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": call["id"], "output": "15C"}]})
    assert wait_run(http, thread["id"], run["id"])["status"] == "completed"
    assert [text_of(m) for m in thread_messages(http, thread["id"])] == ["weather in Bern?", "Checking the weather.", "Bern: 15C."]
    sent = upstream.requests()[1]["messages"]
    check_tool_pairs(sent)
    assert {"role": "assistant", "content": "Checking the weather."} in sent


def test_a_run_whose_model_calls_no_tool_completes(http, upstream):
    upstream.script({"text": "No tool needed."})
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "hello")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    done = wait_run(http, thread["id"], run["id"])
    assert done["status"] == "completed" and done["required_action"] is None
    assert [s["type"] for s in run_steps(http, thread["id"], run["id"])] == ["message_creation"]
    assert upstream.requests()[0]["tools"] == [WEATHER_TOOL]


def test_a_tool_call_cut_off_by_the_length_limit_is_not_handed_out(http, upstream):
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Par'}], "finish_reason": "length"})
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather?")
    run = start_run(http, thread["id"], assistant_id=assistant["id"], max_completion_tokens=300)
    ended = wait_run(http, thread["id"], run["id"])
    assert ended["status"] == "incomplete" and ended["required_action"] is None
    assert ended["incomplete_details"] == {"reason": "max_completion_tokens"}


def test_concurrent_submissions_continue_the_run_once(server, http, upstream):
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}, {"text": "once"})
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "hi")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    (call,) = _required_calls(wait_run(http, thread["id"], run["id"]))

    def submit(i):
        with httpx.Client(base_url=server.v1, timeout=30) as h:
            return h.post(f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
                          json={"tool_outputs": [{"tool_call_id": call["id"], "output": f"out-{i}"}]})

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(submit, range(6)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 5
    assert wait_run(http, thread["id"], run["id"])["status"] == "completed"
    assert len(upstream.requests()) == 2
    assert [text_of(m) for m in thread_messages(http, thread["id"])] == ["hi", "once"]
    (winner,) = [i for i, r in enumerate(responses) if r.status_code == 200]
    assert run_steps(http, thread["id"], run["id"])[0]["step_details"]["tool_calls"][0]["function"]["output"] == f"out-{winner}"
