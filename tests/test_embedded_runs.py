"""Runs on a real model, through the real doors: `threadloom serve` with no model flags
(every model name routed to the embedded SmolLM2-135M), driven by the official openai SDK;
and the openai_compat backend against a real OpenAI-compatible server, llama_cpp.server,
serving the same model on a loopback port.

The model is tiny: the tests check structure and validity, not the quality of answers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp")
jsonschema = pytest.importorskip("jsonschema")

from conftest import free_port, stop, wait_http  # noqa: E402

from threadloom.llm.base import ChatRequest, Finish, TextDelta, Usage  # noqa: E402
from threadloom.llm.embedded import packaged_model_path  # noqa: E402

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def embedded_server(server_factory):
    # No model flags at all: the default route serves every model name from the
    # packaged SmolLM2 (loaded lazily by the first run).
    return server_factory()


@pytest.fixture
def sdk(embedded_server):
    from openai import OpenAI

    with OpenAI(base_url=embedded_server.v1, api_key="test-key", max_retries=0, timeout=120) as c:
        yield c


def run_once(sdk, content: str, **run_options):
    assistant = sdk.beta.assistants.create(model="smollm2", instructions="You are a helpful assistant.")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": content}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100, **run_options
    )
    return thread, run


def last_message_text(sdk, thread_id: str) -> str:
    message = sdk.beta.threads.messages.list(thread_id=thread_id, order="desc", limit=1).data[0]
    assert message.role == "assistant"
    return "".join(part.text.value for part in message.content if part.type == "text")


def test_models_lists_the_default_embedded_route(sdk):
    models = sdk.models.list().data
    assert [(m.id, m.owned_by) for m in models] == [("*", "threadloom:embedded")]
    assert sdk.models.retrieve("smollm2").owned_by == "threadloom:embedded"


def test_a_run_completes_with_text_from_the_embedded_model(sdk):
    # Greedy: at temperature 1 the 135M model now and then rambles past 256 tokens.
    thread, run = run_once(sdk, "What is the capital of France?", max_completion_tokens=256, temperature=0)
    assert run.status == "completed", run.last_error
    assert last_message_text(sdk, thread.id).strip()
    assert run.usage.prompt_tokens > 0 and run.usage.completion_tokens > 0


def test_a_json_object_run_returns_parsable_json(sdk):
    thread, run = run_once(
        sdk, "Describe a cat as a JSON object.", response_format={"type": "json_object"}, temperature=0,
        max_completion_tokens=512,
    )
    assert run.status == "completed", run.last_error
    assert isinstance(json.loads(last_message_text(sdk, thread.id)), dict)


def test_a_forced_function_call_requires_action_with_arguments_that_match_the_schema(sdk):
    thread, run = run_once(
        sdk, "What is the weather in Paris?", tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, temperature=0,
    )
    assert run.status == "requires_action", run.last_error
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert calls and all(call.function.name == "get_weather" for call in calls)
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])

    # The outputs go back in and the run carries on (to an answer, or to another call).
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, poll_interval_ms=100,
        tool_outputs=[{"tool_call_id": call.id, "output": "18 C, sunny"} for call in calls],
    )
    assert run.status in ("completed", "requires_action"), run.last_error


def test_file_search_with_a_model_that_cannot_call_tools(sdk):
    """The small embedded model is not offered the search: the server searches with the
    user's message before its turn and shows it the results."""
    import io

    from v1_checks import create_store

    f = sdk.files.create(file=("leave.md", io.BytesIO(b"Every employee receives 25 days of paid vacation per year.")), purpose="assistants")
    store = create_store(sdk, file_ids=[f.id])
    assistant = sdk.beta.assistants.create(
        model="smollm2", tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "How many vacation days do employees get?"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100, max_completion_tokens=256, temperature=0
    )
    assert run.status in ("completed", "incomplete"), run.last_error
    steps = sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    (result,) = steps[0].step_details.tool_calls[0].file_search.results
    assert result.file_id == f.id
    assert last_message_text(sdk, thread.id).strip()


def test_streamed_deltas_rebuild_the_final_message(sdk):
    assistant = sdk.beta.assistants.create(model="smollm2")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Tell me about the sea."}])
    pieces = []
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    ) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                for part in event.data.delta.content or []:
                    if part.type == "text" and part.text.value:
                        pieces.append(part.text.value)
        final = stream.get_final_run()
    assert final.status in ("completed", "incomplete"), final.last_error
    assert len(pieces) > 1
    assert "".join(pieces) == last_message_text(sdk, thread.id)


# -- openai_compat against llama_cpp.server --------------------------------------------------


@pytest.fixture(scope="module")
def llama_server():
    """llama_cpp.server serving the packaged SmolLM2 on a loopback port."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", packaged_model_path(), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", proc, timeout=120)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


def test_the_openai_compat_backend_streams_from_llama_server(llama_server):
    from threadloom.llm.openai_compat import OpenAICompatBackend

    async def run():
        backend = OpenAICompatBackend(llama_server, timeout=120)
        try:
            request = ChatRequest("smollm2", [{"role": "user", "content": "Say hello."}], max_tokens=32)
            return [chunk async for chunk in backend.stream_chat(request)]
        finally:
            await backend.aclose()

    chunks = asyncio.run(run())
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)).strip()
    assert isinstance(chunks[-1], Finish) and chunks[-1].reason in ("stop", "length")
    assert not any(isinstance(c, Usage) and c.completion_tokens < 0 for c in chunks)


def test_a_run_through_threadloom_upstreamed_to_llama_server(server_factory, llama_server):
    from openai import OpenAI

    server = server_factory("--upstream", llama_server)
    with OpenAI(base_url=server.v1, api_key="test-key", max_retries=0, timeout=120) as client:
        thread, run = run_once(client, "What is the capital of France?", max_completion_tokens=256)
        assert run.status == "completed", run.last_error
        assert last_message_text(client, thread.id).strip()


def test_a_turn_without_a_budget_is_capped(server_factory):
    """One model slot serves every run: a turn that sets no max_completion_tokens stops at
    --embedded-max-tokens (here 16) instead of holding the slot for as long as it likes."""
    from openai import OpenAI

    capped = server_factory("--embedded-max-tokens", "16")
    with OpenAI(base_url=capped.v1, api_key="k", max_retries=0, timeout=120) as sdk:
        thread, run = run_once(sdk, "Write a long story about a dragon and a knight.", temperature=0)
        assert run.status == "incomplete", run.last_error
        assert run.incomplete_details.reason == "max_completion_tokens"
        assert 0 < run.usage.completion_tokens <= 16
        assert last_message_text(sdk, thread.id).strip()


def test_a_looping_answer_is_cut():
    from threadloom.llm.embedded import REPEAT_WINDOW, _degenerate

    assert _degenerate([5, 6, 7] * 40)
    assert _degenerate([1] * (REPEAT_WINDOW + 1))
    assert not _degenerate(list(range(200)))
    assert not _degenerate([1, 2] * 20)  # too short to call a loop
