"""What the model is sent: instructions (assistant, override, additional), additional
messages, the thread's history with tool calls and outputs, truncation, the run-wide
token budgets, the model name and the sampling / tool / format parameters."""

from __future__ import annotations

import pytest

from run_checks import (
    WEATHER_TOOL,
    check_tool_pairs,
    create_assistant,
    create_thread,
    run_steps,
    start_run,
    text_of,
    thread_messages,
    wait_run,
)
from threadloom.llm.tokenizer import count_o200k

pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")  # bpe_openai


def _run_to_end(http, thread_id: str, **fields) -> dict:
    run = start_run(http, thread_id, **fields)
    return wait_run(http, thread_id, run["id"])


def _chat(messages: list[dict]) -> list[tuple[str, object]]:
    return [(m["role"], m.get("content")) for m in messages]


def _tool_round(http, upstream, assistant_id: str, thread_id: str, output: str, answer: str, text: str | None = None) -> None:
    """One run on the thread in which the model calls get_weather once (after `text`), then answers."""
    upstream.script({"text": text, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}, {"text": answer})
    run = start_run(http, thread_id, assistant_id=assistant_id)
    waiting = wait_run(http, thread_id, run["id"])
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    http.post(f"/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": call["id"], "output": output}]})
    assert wait_run(http, thread_id, run["id"])["status"] == "completed"


# -- instructions and messages ---------------------------------------------------


def test_assistant_instructions_and_thread_messages_in_order(http, upstream):
    assistant = create_assistant(http, instructions="You are terse.")
    thread = create_thread(http, "first question")
    http.post(f"/threads/{thread['id']}/messages", json={"role": "assistant", "content": "an earlier answer"})
    http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": [
        {"type": "text", "text": "look at "}, {"type": "text", "text": "this"}]})
    upstream.script({"text": "reply one"}, {"text": "reply two"})
    _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    assert _chat(upstream.requests()[0]["messages"]) == [
        ("system", "You are terse."), ("user", "first question"), ("assistant", "an earlier answer"), ("user", "look at this"),
    ]
    # The next run sees the previous run's answer too.
    http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "second question"})
    _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    assert _chat(upstream.requests()[1]["messages"])[-3:] == [
        ("user", "look at this"), ("assistant", "reply one"), ("user", "second question"),
    ]


def test_image_parts_are_sent_as_content_parts(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http)
    http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]})
    _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    (user,) = [m for m in upstream.requests()[0]["messages"] if m["role"] == "user"]
    assert user["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]


def test_instructions_override_and_additional_instructions(http, upstream):
    assistant = create_assistant(http, instructions="Assistant rules.")
    thread = create_thread(http, "q")
    _run_to_end(http, thread["id"], assistant_id=assistant["id"], additional_instructions="Also be kind.")
    _run_to_end(http, thread["id"], assistant_id=assistant["id"], instructions="Run rules.")
    _run_to_end(http, thread["id"], assistant_id=assistant["id"], instructions="Run rules.", additional_instructions="Also be kind.")
    systems = [r["messages"][0] for r in upstream.requests()]
    assert all(s["role"] == "system" for s in systems)
    first, second, third = (s["content"] for s in systems)
    assert first.startswith("Assistant rules.") and first.endswith("Also be kind.")
    assert second == "Run rules."
    assert third.startswith("Run rules.") and third.endswith("Also be kind.") and "Assistant rules." not in third
    # The runs carry the same effective instructions the model got.
    runs = http.get(f"/threads/{thread['id']}/runs", params={"order": "asc"}).json()["data"]
    assert [r["instructions"] for r in runs] == [first, second, third]


def test_no_instructions_sends_no_system_message(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http, "q")
    _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    assert [m["role"] for m in upstream.requests()[0]["messages"]] == ["user"]


def test_additional_messages_are_stored_on_the_thread_and_sent(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http, "one")
    upstream.script({"text": "four"})
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], additional_messages=[
        {"role": "user", "content": "two", "metadata": {"m": "1"}},
        {"role": "assistant", "content": "three"},
    ])
    assert run["status"] == "completed"
    messages = thread_messages(http, thread["id"])
    assert [(m["role"], text_of(m)) for m in messages] == [("user", "one"), ("user", "two"), ("assistant", "three"), ("assistant", "four")]
    assert messages[1]["metadata"] == {"m": "1"} and messages[1]["status"] == "completed"
    assert _chat(upstream.requests()[0]["messages"]) == [("user", "one"), ("user", "two"), ("assistant", "three")]


def test_bad_additional_messages_write_nothing(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http, "one")
    response = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"], "additional_messages": [
        {"role": "user", "content": "fine"}, {"role": "system", "content": "not a role"}]})
    assert response.status_code == 400
    assert len(thread_messages(http, thread["id"])) == 1
    assert http.get(f"/threads/{thread['id']}/runs").json()["data"] == []


# -- the model name -----------------------------------------------------------------


@pytest.mark.parametrize("override", [None, "some-org/Other.Model:latest@v2"])
def test_the_model_name_is_sent_as_is(http, upstream, override):
    assistant = create_assistant(http, model="my-org/Llama-3.1-8B-Instruct:q4_K_M")
    thread = create_thread(http, "q")
    fields = {"model": override} if override else {}
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], **fields)
    expected = override or "my-org/Llama-3.1-8B-Instruct:q4_K_M"
    assert run["model"] == expected
    assert upstream.requests()[0]["model"] == expected


# -- parameters on the wire -------------------------------------------------------------


def test_sampling_parameters_and_defaults_on_the_wire(http, upstream):
    assistant = create_assistant(http, temperature=0.2, top_p=0.6)
    thread = create_thread(http, "q")
    _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    _run_to_end(http, thread["id"], assistant_id=assistant["id"], temperature=1.7, top_p=0.1)
    plain = create_assistant(http)
    _run_to_end(http, thread["id"], assistant_id=plain["id"])
    first, second, third = upstream.requests()
    assert (first["temperature"], first["top_p"]) == (0.2, 0.6)
    assert (second["temperature"], second["top_p"]) == (1.7, 0.1)
    assert third.get("temperature", 1) == 1 and third.get("top_p", 1) == 1
    for request in (first, second, third):
        assert request["stream"] is True
        assert "tools" not in request and "tool_choice" not in request and "parallel_tool_calls" not in request
        assert "response_format" not in request and "max_tokens" not in request


@pytest.mark.parametrize("fmt", [
    {"type": "text"},
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {
        "name": "answer", "description": "an answer", "strict": True,
        "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}}},
])
def test_response_format_is_passed_to_the_model(http, upstream, fmt):
    assistant = create_assistant(http)
    thread = create_thread(http, "q")
    upstream.script({"text": '{"a": "b"}'})
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], response_format=fmt)
    assert run["status"] == "completed" and run["response_format"] == fmt
    assert upstream.requests()[0]["response_format"] == fmt


def test_response_format_from_the_assistant_and_auto(http, upstream):
    assistant = create_assistant(http, response_format={"type": "json_object"})
    thread = create_thread(http, "q")
    _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    _run_to_end(http, thread["id"], assistant_id=assistant["id"], response_format="auto")
    first, second = upstream.requests()
    assert first["response_format"] == {"type": "json_object"}
    assert "response_format" not in second


@pytest.mark.parametrize("choice", ["none", "auto", "required", {"type": "function", "function": {"name": "get_weather"}}])
@pytest.mark.parametrize("parallel", [True, False])
def test_tool_choice_and_parallel_tool_calls_are_passed_to_the_model(http, upstream, choice, parallel):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "q")
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], tool_choice=choice, parallel_tool_calls=parallel)
    assert run["status"] == "completed" and run["tool_choice"] == choice and run["parallel_tool_calls"] is parallel
    (sent,) = upstream.requests()
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == choice
    assert sent["parallel_tool_calls"] is parallel


def test_run_tools_override_the_assistants_on_the_wire(http, upstream):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "q")
    other = {"type": "function", "function": {"name": "search", "description": "web search",
                                              "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}
    _run_to_end(http, thread["id"], assistant_id=assistant["id"], tools=[other])
    assert upstream.requests()[0]["tools"] == [other]


# -- truncation ----------------------------------------------------------------------------


def test_truncation_last_messages_keeps_the_newest(http, upstream):
    assistant = create_assistant(http, instructions="sys")
    thread = create_thread(http, *[f"message {i}" for i in range(6)])
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], truncation_strategy={"type": "last_messages", "last_messages": 2})
    assert run["truncation_strategy"] == {"type": "last_messages", "last_messages": 2}
    assert _chat(upstream.requests()[0]["messages"]) == [("system", "sys"), ("user", "message 4"), ("user", "message 5")]


@pytest.mark.parametrize("keep, expected", [
    (1, [("user", "thanks")]),
    (2, [("assistant", "answer one"), ("user", "thanks")]),
    (3, [("assistant", "Checking."), ("assistant", None), ("tool", "OUTPUT-1"), ("assistant", "answer one"), ("user", "thanks")]),
    (4, [("user", "weather?"), ("assistant", "Checking."), ("assistant", None), ("tool", "OUTPUT-1"),
         ("assistant", "answer one"), ("user", "thanks")]),
])
def test_truncation_last_messages_never_separates_a_tool_call_from_its_output(http, upstream, keep, expected):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather?")
    # The thread reads: weather?, Checking., [call + output], answer one, thanks.
    _tool_round(http, upstream, assistant["id"], thread["id"], output="OUTPUT-1", answer="answer one", text="Checking.")
    http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "thanks"})
    _run_to_end(http, thread["id"], assistant_id=assistant["id"], truncation_strategy={"type": "last_messages", "last_messages": keep})
    sent = upstream.requests()[-1]["messages"]
    check_tool_pairs(sent)
    assert _chat(sent) == expected


def test_truncation_auto_drops_the_oldest_to_fit_max_prompt_tokens(http, upstream):
    assistant = create_assistant(http, instructions="Short system prompt.")
    paragraphs = [f"paragraph {i}: " + "lorem ipsum dolor sit amet " * 20 for i in range(8)]
    thread = create_thread(http, *paragraphs)
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], max_prompt_tokens=500)
    assert run["status"] == "completed"
    sent = upstream.requests()[0]["messages"]
    users = [m["content"] for m in sent if m["role"] == "user"]
    assert sent[0] == {"role": "system", "content": "Short system prompt."}
    assert 1 <= len(users) < len(paragraphs)
    assert users == paragraphs[-len(users):]  # the newest, in order
    assert sum(count_o200k(m["content"]) for m in sent) <= 500
    # Without a budget, everything is sent.
    _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    assert [m["content"] for m in upstream.requests()[1]["messages"] if m["role"] == "user"] == paragraphs


def test_truncation_auto_keeps_tool_calls_with_their_outputs(http, upstream):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather? " + "filler words here " * 40)
    _tool_round(http, upstream, assistant["id"], thread["id"], output="sunny " * 300, answer="It is sunny.")
    http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "and tomorrow? " + "more words " * 30})
    upstream.reset()
    for budget in (300, 450, 900):
        run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], max_prompt_tokens=budget)
        assert run["status"] == "completed", run
    sent = [r["messages"] for r in upstream.requests()]
    for messages in sent:
        check_tool_pairs(messages)
        assert messages[-1]["role"] in ("user", "assistant")
    with_tools = [any(m["role"] == "tool" for m in messages) for messages in sent]
    assert with_tools[0] is False and with_tools[-1] is True  # dropped whole when tight, kept whole when room


# -- token budgets -------------------------------------------------------------------------------


def test_max_prompt_tokens_too_small_for_the_newest_message_ends_incomplete(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http, "too long " * 400)
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], max_prompt_tokens=256)
    assert run["status"] == "incomplete"
    assert run["incomplete_details"] == {"reason": "max_prompt_tokens"}
    assert run["completed_at"] is None and run["failed_at"] is None and run["last_error"] is None
    assert upstream.requests() == []  # the model is not called with a prompt over budget
    assert http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "ok"}).status_code == 200


def test_tokens_are_counted_with_a_real_tokenizer(http, upstream):
    """600 emoji are one "word" and 150 "characters/4", but about 600 o200k tokens."""
    emoji = "".join("😀🥶🫠🧌🪿😅"[i % 6] for i in range(600))
    assert count_o200k(emoji) >= 500
    assistant = create_assistant(http)
    thread = create_thread(http, emoji)
    assert _run_to_end(http, thread["id"], assistant_id=assistant["id"], max_prompt_tokens=400)["status"] == "incomplete"
    assert _run_to_end(http, thread["id"], assistant_id=assistant["id"], max_prompt_tokens=2000)["status"] == "completed"


def test_max_prompt_tokens_is_a_budget_over_the_whole_run(http, upstream):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather?")
    upstream.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}], "usage": {"prompt_tokens": 280, "completion_tokens": 10}},
        {"text": "never sent"},
    )
    run = start_run(http, thread["id"], assistant_id=assistant["id"], max_prompt_tokens=300)
    waiting = wait_run(http, thread["id"], run["id"])
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    http.post(f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": call["id"], "output": "a long weather report " * 10}]})
    ended = wait_run(http, thread["id"], run["id"])
    assert ended["status"] == "incomplete" and ended["incomplete_details"] == {"reason": "max_prompt_tokens"}
    assert ended["usage"]["prompt_tokens"] == 280 and ended["usage"]["completion_tokens"] == 10
    assert len(upstream.requests()) == 1
    assert [s["status"] for s in run_steps(http, thread["id"], run["id"])] == ["completed"]


def test_max_completion_tokens_is_a_budget_over_the_whole_run(http, upstream):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather?")
    upstream.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}], "usage": {"prompt_tokens": 20, "completion_tokens": 200}},
        {"text": "The weather in Rome is", "finish_reason": "length", "usage": {"prompt_tokens": 40, "completion_tokens": 100}},
    )
    run = start_run(http, thread["id"], assistant_id=assistant["id"], max_completion_tokens=300)
    waiting = wait_run(http, thread["id"], run["id"])
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    http.post(f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": call["id"], "output": "warm"}]})
    ended = wait_run(http, thread["id"], run["id"])
    first, second = upstream.requests()
    assert first["max_tokens"] == 300 and second["max_tokens"] == 100  # what is left of the budget
    assert ended["status"] == "incomplete" and ended["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert ended["usage"] == {"prompt_tokens": 60, "completion_tokens": 300, "total_tokens": 360}
    message = thread_messages(http, thread["id"])[-1]
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "max_tokens"}
    assert text_of(message) == "The weather in Rome is" and message["incomplete_at"] is not None
    steps = run_steps(http, thread["id"], run["id"])
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]
    assert steps[1]["usage"] == {"prompt_tokens": 40, "completion_tokens": 100, "total_tokens": 140}


def test_an_exhausted_completion_budget_ends_the_run_before_the_next_model_call(http, upstream):
    assistant = create_assistant(http, tools=[WEATHER_TOOL])
    thread = create_thread(http, "weather?")
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}], "usage": {"prompt_tokens": 20, "completion_tokens": 256}})
    run = start_run(http, thread["id"], assistant_id=assistant["id"], max_completion_tokens=256)
    waiting = wait_run(http, thread["id"], run["id"])
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    http.post(f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": call["id"], "output": "warm"}]})
    ended = wait_run(http, thread["id"], run["id"])
    assert ended["status"] == "incomplete" and ended["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert len(upstream.requests()) == 1


def test_a_length_cut_in_one_turn_ends_incomplete_with_the_message_incomplete(http, upstream):
    assistant = create_assistant(http)
    thread = create_thread(http, "write an essay")
    upstream.script({"text": "It was a dark and", "finish_reason": "length"})
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"], max_completion_tokens=256)
    assert upstream.requests()[0]["max_tokens"] == 256
    assert run["status"] == "incomplete" and run["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert run["usage"]["completion_tokens"] > 0
    message = thread_messages(http, thread["id"])[-1]
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "max_tokens"}
    assert text_of(message) == "It was a dark and"


def test_usage_is_counted_with_the_tokenizer_when_the_model_reports_none(http, upstream):
    upstream.script({"text": "Counted by our own tokenizer, not by the model.", "usage": {"prompt_tokens": 0, "completion_tokens": 0}})
    assistant = create_assistant(http, instructions="Count carefully.")
    thread = create_thread(http, "how many tokens?")
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    assert run["usage"]["completion_tokens"] == count_o200k("Counted by our own tokenizer, not by the model.")
    assert run["usage"]["prompt_tokens"] >= count_o200k("Count carefully.") + count_o200k("how many tokens?")
    (step,) = run_steps(http, thread["id"], run["id"])
    assert step["usage"] == run["usage"]


def test_temperature_zero_is_sent_as_zero(http, upstream):
    assistant = create_assistant(http, temperature=0, top_p=0)
    thread = create_thread(http, "q")
    run = _run_to_end(http, thread["id"], assistant_id=assistant["id"])
    assert run["temperature"] == 0 and run["top_p"] == 0
    (sent,) = upstream.requests()
    assert sent["temperature"] == 0 and sent["top_p"] == 0


def test_a_history_too_long_to_tokenize_at_once_still_runs(client, upstream):
    """250,000 random CJK characters make ~480,000 o200k tokens: more than the tokenizer
    takes in one call. The context is counted in segments (off the event loop) and cut to
    what the model can take; the run completes."""
    import random

    rng = random.Random(1)
    text = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(250_000))
    upstream.script({"text": "read it"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50,
                                                   max_prompt_tokens=100_000)
    assert run.status in ("completed", "incomplete"), run.last_error
    if run.status == "incomplete":
        assert run.incomplete_details.reason == "max_prompt_tokens"
