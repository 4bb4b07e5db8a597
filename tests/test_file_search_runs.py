"""file_search in runs: the server offers the model a search function, runs the searches
itself and goes on without requires_action; steps, streams and citations as OpenAI shows
them. The model is the scripted upstream (a test double standing in for the LLM: the
test decides when it calls the search and reads back what it was sent); the files,
stores, embedder and search are real."""

from __future__ import annotations

import io

import httpx
import pytest
from openai import AssistantEventHandler

from openapi_schemas import assert_schema
from run_checks import read_stream
from v1_checks import assert_not_found, create_store

HANDBOOK = (
    "Employee handbook. Leave: every employee receives 25 days of paid vacation per calendar year. "
    "Unused vacation days carry over until March."
)
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
SEARCH = {"name": "file_search", "arguments": {"query": "vacation days per year"}}


def upload(client, name: str, text: str):
    return client.files.create(file=(name, io.BytesIO(text.encode())), purpose="assistants")


@pytest.fixture(scope="module")
def handbook_store(server):
    from openai import OpenAI

    with OpenAI(base_url=server.v1, api_key="k", max_retries=0, timeout=60) as client:
        f = upload(client, "handbook.md", HANDBOOK)
        store = create_store(client, name="handbook", file_ids=[f.id])
        yield store, f


def search_assistant(client, store_id: str, **tool):
    return client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search", **tool}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )


def steps_of(http, thread_id: str, run_id: str, include: bool = False) -> list[dict]:
    params = {"order": "asc"}
    if include:
        params["include[]"] = INCLUDE
    page = http.get(f"/threads/{thread_id}/runs/{run_id}/steps", params=params).json()
    for step in page["data"]:
        assert_schema(step, "RunStepObject")
    return page["data"]


def test_the_model_searches_and_cites(client, http, upstream, handbook_store):
    store, f = handbook_store
    upstream.script({"tool_calls": [SEARCH]}, {"text": "You get 25 days【0:0†handbook.md】."})
    assistant = search_assistant(client, store.id)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "How many vacation days do I get?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed", run.last_error

    # The model was offered the search, and then shown its results.
    first, second = upstream.requests()[-2:]
    assert [t["function"]["name"] for t in first["tools"]] == ["file_search"]
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and "25 days of paid vacation" in tool_message["content"]
    assert "【0:0†handbook.md】" in tool_message["content"]

    search_step, message_step = steps_of(http, thread.id, run.id)
    assert search_step["type"] == "tool_calls" and search_step["status"] == "completed"
    (call,) = search_step["step_details"]["tool_calls"]
    assert call["type"] == "file_search"
    assert call["file_search"]["ranking_options"] == {"ranker": "default_2024_08_21", "score_threshold": 0.0}
    (result,) = call["file_search"]["results"]
    assert result["file_id"] == f.id and result["file_name"] == "handbook.md" and 0 < result["score"] <= 1
    assert "content" not in result  # only with include[]
    with_content = steps_of(http, thread.id, run.id, include=True)[0]["step_details"]["tool_calls"][0]
    assert "25 days" in with_content["file_search"]["results"][0]["content"][0]["text"]
    one = http.get(f"/threads/{thread.id}/runs/{run.id}/steps/{search_step['id']}", params={"include[]": INCLUDE}).json()
    assert one["step_details"]["tool_calls"][0]["file_search"]["results"][0]["content"]
    assert message_step["type"] == "message_creation"

    message = http.get(f"/threads/{thread.id}/messages", params={"limit": 1}).json()["data"][0]
    assert_schema(message, "MessageObject")
    text = message["content"][0]["text"]
    assert text["value"] == "You get 25 days【0:0†handbook.md】."
    start = text["value"].index("【")
    assert text["annotations"] == [{
        "type": "file_citation", "text": "【0:0†handbook.md】", "start_index": start,
        "end_index": start + len("【0:0†handbook.md】"), "file_citation": {"file_id": f.id},
    }]


def test_streamed_run_shows_the_search_step(client, http, upstream, handbook_store):
    store, f = handbook_store
    upstream.script({"tool_calls": [SEARCH]}, {"text": "25 days【0:0†handbook.md】", "chunk_size": 4})
    assistant = search_assistant(client, store.id)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "vacation?"}])
    with http.stream("POST", f"/threads/{thread.id}/runs", json={"assistant_id": assistant.id, "stream": True}) as r:
        events = read_stream(r)
    names = [e.name for e in events]
    assert names.index("thread.run.step.created") < names.index("thread.run.step.delta") < names.index("thread.run.step.completed")
    delta = next(e.data for e in events if e.name == "thread.run.step.delta")
    assert delta["delta"]["step_details"]["tool_calls"][0]["type"] == "file_search"
    done = next(e.data for e in events if e.name == "thread.run.step.completed")
    assert done["step_details"]["tool_calls"][0]["file_search"]["results"][0]["file_id"] == f.id
    assert "content" not in done["step_details"]["tool_calls"][0]["file_search"]["results"][0]
    assert names.count("thread.run.in_progress") == 1  # the run never left in_progress
    assert "thread.run.requires_action" not in names and names[-2] == "thread.run.completed"

    # The SDK's handler sees the call and the citation.
    upstream.script({"tool_calls": [SEARCH]}, {"text": "25 days【0:0†handbook.md】", "chunk_size": 4})
    seen = []

    class Handler(AssistantEventHandler):
        def on_tool_call_created(self, tool_call):
            seen.append(tool_call.type)

    thread = client.beta.threads.create(messages=[{"role": "user", "content": "vacation?"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()) as stream:
        stream.until_done()
        final = stream.get_final_messages()[-1]
    assert seen == ["file_search"]
    assert final.content[0].text.annotations[0].file_citation.file_id == f.id


def test_streams_carry_content_when_the_run_asked_for_it(client, http, upstream, handbook_store):
    store, _ = handbook_store
    upstream.script({"tool_calls": [SEARCH]}, {"text": "ok"})
    assistant = search_assistant(client, store.id)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "vacation?"}])
    with http.stream("POST", f"/threads/{thread.id}/runs", params={"include[]": INCLUDE},
                     json={"assistant_id": assistant.id, "stream": True}) as r:
        events = read_stream(r)
    done = next(e.data for e in events if e.name == "thread.run.step.completed")
    assert "25 days" in done["step_details"]["tool_calls"][0]["file_search"]["results"][0]["content"][0]["text"]
    bad = http.post(f"/threads/{thread.id}/runs", params={"include[]": "everything"}, json={"assistant_id": assistant.id})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "include"


def test_search_and_function_in_one_turn(client, http, upstream, handbook_store):
    store, _ = handbook_store
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}, weather], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    upstream.script({"tool_calls": [SEARCH, {"name": "get_weather", "arguments": {"city": "Oslo"}}]}, {"text": "done"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "vacation and weather"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "requires_action"
    (pending,) = run.required_action.submit_tool_outputs.tool_calls
    assert pending.function.name == "get_weather"
    (step,) = steps_of(http, thread.id, run.id)
    assert [c["type"] for c in step["step_details"]["tool_calls"]] == ["file_search", "function"]
    assert step["step_details"]["tool_calls"][0]["file_search"]["results"]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": pending.id, "output": "5C"}], poll_interval_ms=50
    )
    assert run.status == "completed"
    sent = upstream.requests()[-1]["messages"]
    tool_outputs = {m["tool_call_id"]: m["content"] for m in sent if m["role"] == "tool"}
    assert tool_outputs[pending.id] == "5C"
    assert any("25 days" in content for content in tool_outputs.values())


def test_tool_options_and_forced_search(client, upstream, handbook_store):
    store, _ = handbook_store
    assistant = search_assistant(client, store.id, file_search={"max_num_results": 1, "ranking_options": {"score_threshold": 0.99, "ranker": "auto"}})
    upstream.script({"tool_calls": [SEARCH]}, {"text": "nothing relevant"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "vacation?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "file_search"}, poll_interval_ms=50
    )
    assert run.status == "completed"
    first, second = upstream.requests()[-2:]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "file_search"}}
    assert second.get("tool_choice") == "auto"  # forced once, then the model's to choose
    step = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data[0]
    call = step.step_details.tool_calls[0]
    assert call.file_search.ranking_options.score_threshold == 0.99
    assert call.file_search.results == []  # nothing scores 0.99


def test_attachments_make_the_thread_a_store(client, http, upstream):
    f = upload(client, "policy.md", "Remote work is allowed on Tuesdays and Thursdays.")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": "When can I work from home?",
        "attachments": [{"file_id": f.id, "tools": [{"type": "file_search"}]}],
    }])
    (store_id,) = thread.tool_resources.file_search.vector_store_ids
    store = client.vector_stores.retrieve(store_id)
    assert store.expires_after.days == 7 and store.file_counts.total == 1
    upstream.script({"tool_calls": [{"name": "file_search", "arguments": {"query": "remote work days"}}]}, {"text": "Tuesdays."})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    step = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data[0]
    assert step.step_details.tool_calls[0].file_search.results[0].file_id == f.id
    # A later message's attachment joins the same store.
    g = upload(client, "more.md", "Office hours are nine to five.")
    client.beta.threads.messages.create(thread.id, role="user", content="and hours?", attachments=[{"file_id": g.id, "tools": [{"type": "file_search"}]}])
    assert client.beta.threads.retrieve(thread.id).tool_resources.file_search.vector_store_ids == [store_id]
    assert client.vector_stores.retrieve(store_id).file_counts.total == 2


def test_vector_stores_helper_creates_a_store(client, upstream):
    f = upload(client, "faq.md", "The wifi password is written on the kitchen whiteboard.")
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [f.id], "metadata": {"from": "helper"}}]}},
    )
    (store_id,) = assistant.tool_resources.file_search.vector_store_ids
    store = client.vector_stores.retrieve(store_id)
    assert store.metadata == {"from": "helper"} and store.file_counts.total == 1
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "wifi?"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [f.id]}]}},
    )
    assert len(thread.tool_resources.file_search.vector_store_ids) == 1


def test_ids_that_name_nothing_are_refused_at_the_request(client, http, handbook_store):
    store, f = handbook_store
    r = http.post("/assistants", json={"model": "m", "tool_resources": {"file_search": {"vector_store_ids": ["vs_nope"]}}})
    assert_not_found(r, "vector store", "vs_nope")
    r = http.post("/assistants", json={"model": "m", "tool_resources": {"code_interpreter": {"file_ids": ["file-nope"]}}})
    assert_not_found(r, "file", "file-nope")
    r = http.post("/threads", json={"messages": [{"role": "user", "content": "x", "attachments": [{"file_id": "file-nope", "tools": [{"type": "file_search"}]}]}]})
    assert_not_found(r, "file", "file-nope")
    r = http.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": [store.id, store.id]}}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tool_resources.file_search.vector_store_ids"
    r = http.post("/threads", json={"tool_resources": {"file_search": {"vector_stores": [{"file_ids": ["file-nope"]}]}}})
    assert_not_found(r, "file", "file-nope")
    assistant = http.post("/assistants", json={"model": "m"}).json()
    r = http.post("/threads/runs", json={"assistant_id": assistant["id"], "tool_resources": {"file_search": {"vector_store_ids": ["vs_nope"]}}})
    assert_not_found(r, "vector store", "vs_nope")
    assert http.post("/threads", json={"tool_resources": {"code_interpreter": {"file_ids": [f.id] * 21}}}).status_code == 400


def test_a_run_searches_with_the_thread_and_run_resources(client, upstream, handbook_store):
    store, f = handbook_store
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    upstream.script({"tool_calls": [SEARCH]}, {"text": "ok"})
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "vacation?"}]},
        tool_resources={"file_search": {"vector_store_ids": [store.id]}}, poll_interval_ms=50,
    )
    assert run.status == "completed"
    assert run.tool_resources["file_search"]["vector_store_ids"] == [store.id]  # not a typed field of the SDK's Run
    step = client.beta.threads.runs.steps.list(thread_id=run.thread_id, run_id=run.id, order="asc").data[0]
    assert step.step_details.tool_calls[0].file_search.results[0].file_id == f.id
