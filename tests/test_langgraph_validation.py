"""Bad input on the LangGraph door: every route that reads a body answers an empty body,
invalid JSON, the wrong JSON type and deep nesting with LangGraph's 422 (never a 500);
metadata keeps the OpenAI door's limits; an input message holds at most 256,000
characters of text. After each refusal the server still serves."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk.errors import UnprocessableEntityError

from langgraph_support import client as lg_client, run

DEEP = b"[" * 10_000 + b"]" * 10_000
SEVENTEEN = {f"k{i}": i for i in range(17)}
SIXTEEN = {f"k{i}": i for i in range(16)}


@pytest.fixture(scope="module")
def lg_http(server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def ids(lg_http):
    assistant = lg_http.post("/assistants", json={"graph_id": "agent"}).json()
    thread = lg_http.post("/threads", json={}).json()
    return assistant["assistant_id"], thread["thread_id"]


def body_routes(assistant_id: str, thread_id: str) -> list[tuple[str, str]]:
    """(method, path) of every route that reads a body."""
    return [
        ("POST", "/assistants"),
        ("POST", "/assistants/search"),
        ("POST", "/assistants/count"),
        ("PATCH", f"/assistants/{assistant_id}"),
        ("POST", f"/assistants/{assistant_id}/versions"),
        ("POST", f"/assistants/{assistant_id}/latest"),
        ("POST", "/threads"),
        ("POST", "/threads/search"),
        ("POST", "/threads/count"),
        ("PATCH", f"/threads/{thread_id}"),
        ("POST", f"/threads/{thread_id}/state"),
        ("POST", f"/threads/{thread_id}/state/checkpoint"),
        ("POST", f"/threads/{thread_id}/history"),
        ("POST", f"/threads/{thread_id}/runs"),
        ("POST", f"/threads/{thread_id}/runs/stream"),
        ("POST", f"/threads/{thread_id}/runs/wait"),
        ("POST", "/runs"),
        ("POST", "/runs/stream"),
        ("POST", "/runs/wait"),
        ("POST", "/runs/batch"),
        ("POST", "/runs/cancel"),
    ]


def assert_validation_error(r: httpx.Response, starts: str | None = None) -> str:
    """A 422 whose detail says what is wrong in one string (what the SDKs show the user);
    `starts`: how it begins (the field, then pydantic's words)."""
    assert r.status_code == 422, (r.request.method, r.request.url.path, r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail, detail
    if starts is not None:
        assert detail.startswith(starts), detail
    return detail


def assert_serving(http: httpx.Client) -> None:
    assert http.get("/ok").json() == {"ok": True}
    assert http.post("/threads/search", json={"limit": 1}).status_code == 200


@pytest.mark.parametrize("case", ["empty", "invalid", "array", "deep", "deep_inside"])
def test_every_body_route_refuses_bad_json_with_422(lg_http, ids, case):
    headers = {"Content-Type": "application/json"}
    for method, path in body_routes(*ids):
        if case == "empty":  # read as the empty object, as before
            r = lg_http.request(method, path, content=b"", headers=headers)
            same = lg_http.request(method, path, json={})
            assert r.status_code == same.status_code and r.status_code in (200, 422), (path, r.text[:300])
            if r.status_code == 422:
                assert r.json() == same.json() and r.json()["detail"]
        elif case == "invalid":
            detail = assert_validation_error(lg_http.request(method, path, content=b"{nope", headers=headers),
                                             "Invalid JSON body: ")
            assert len(detail) > len("Invalid JSON body: ")
        elif case == "array":
            if path == "/runs/batch":  # the list of a batch holds objects
                assert_validation_error(lg_http.request(method, path, content=b"[1]", headers=headers),
                                        "0: Input should be a valid dictionary")
            else:
                assert_validation_error(lg_http.request(method, path, content=b"[1, 2]", headers=headers),
                                        "Input should be a valid dictionary")
        elif case == "deep":
            assert_validation_error(lg_http.request(method, path, content=DEEP, headers=headers),
                                    "JSON body nested more than")
        else:  # deeper than we store, though orjson would read it
            deep = b"[" * 300 + b"]" * 300
            content = b'{"metadata": {"a": ' + deep + b'}, "input": ' + deep + b'}'
            if path == "/runs/batch":
                content = b"[" + content + b"]"
            assert_validation_error(lg_http.request(method, path, content=content, headers=headers),
                                    "JSON body nested more than")
        assert_serving(lg_http)


def test_batch_is_checked_whole_before_any_run_is_made(lg_http):
    threads_before = lg_http.post("/threads/count", json={}).json()
    good = {"assistant_id": "agent", "input": None, "on_completion": "keep"}
    r = lg_http.post("/runs/batch", json=[good, {"assistant_id": "agent", "stream_mode": "nope"}])
    assert_validation_error(r, "1.stream_mode")
    r = lg_http.post("/runs/batch", json=[good, {"assistant_id": "agent", "metadata": SEVENTEEN}])
    assert_validation_error(r, "1.metadata: Metadata ")
    big = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "x" * 256_001}]}}
    r = lg_http.post("/runs/batch", json=[good, big])
    assert r.status_code == 422 and "256000" in r.json()["detail"]
    assert lg_http.post("/threads/count", json={}).json() == threads_before
    made = lg_http.post("/runs/batch", json=[good, good])
    assert made.status_code == 200 and len(made.json()) == 2


def test_metadata_limits_on_every_door_object(server, lg_http, ids):
    assistant_id, thread_id = ids
    huge = {f"key{i}": i for i in range(100_000)}
    long_key = {"k" * 65: 1}
    long_value = {"k": {"list": ["v" * 500, "w" * 20]}}  # 531 characters of JSON
    writes = [
        ("POST", "/assistants", {"graph_id": "agent"}),
        ("PATCH", f"/assistants/{assistant_id}", {}),
        ("POST", "/threads", {}),
        ("PATCH", f"/threads/{thread_id}", {}),
        ("POST", f"/threads/{thread_id}/runs", {"assistant_id": "agent"}),
        ("POST", "/runs", {"assistant_id": "agent"}),
        ("POST", "/runs/wait", {"assistant_id": "agent"}),
    ]
    for method, path, body in writes:
        for metadata in (SEVENTEEN, huge, long_key, long_value):
            r = lg_http.request(method, path, json={**body, "metadata": metadata})
            detail = assert_validation_error(r, "metadata: Metadata ")
            assert len(detail) < 1000  # a large value is not echoed
        assert_serving(lg_http)

    async def main():
        lg = lg_client(server)
        at_limit = {"k" * 64: "v" * 512, **{f"k{i}": {"n": i} for i in range(15)}}
        thread = await lg.threads.create(metadata=at_limit)
        assistant = await lg.assistants.create("agent", metadata=SIXTEEN)
        changed = await lg.threads.update(thread["thread_id"], metadata={"k0": "changed"})
        with pytest.raises(UnprocessableEntityError) as grown:
            await lg.threads.update(thread["thread_id"], metadata={"one_more": 1})
        with pytest.raises(UnprocessableEntityError) as grown_assistant:
            await lg.assistants.update(assistant["assistant_id"], metadata={"one_more": 1})
        with pytest.raises(UnprocessableEntityError) as sdk_refused:
            await lg.threads.create(metadata=SEVENTEEN)
        after = await lg.threads.get(thread["thread_id"])
        return thread, changed, grown.value, grown_assistant.value, sdk_refused.value, after

    thread, changed, grown, grown_assistant, sdk_refused, after = run(main())
    assert len(thread["metadata"]) == 16 and changed["metadata"]["k0"] == "changed"
    assert grown.body["detail"].startswith("Invalid 'metadata': too many keys")
    assert grown_assistant.body["detail"].startswith("Invalid 'metadata': too many keys")
    assert sdk_refused.body["detail"].startswith("metadata: Metadata ")
    assert str(sdk_refused).startswith("metadata: Metadata ")  # what the SDK tells its user
    assert "one_more" not in after["metadata"]


def test_server_added_thread_keys_never_lock_a_thread(server, upstream):
    """A run adds graph_id and assistant_id to its thread's metadata (as LangGraph's server
    does), which may take it past 16 keys; changing existing keys stays allowed."""
    upstream.script({"text": "ok"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create(metadata=SIXTEEN)
        await lg.runs.wait(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "hi"}]})
        return await lg.threads.update(thread["thread_id"], metadata={"k1": "again"})

    patched = run(main())
    assert len(patched["metadata"]) == 18 and patched["metadata"]["k1"] == "again"


def test_input_messages_hold_at_most_256000_characters(server, lg_http, ids):
    _, thread_id = ids
    too_long = "x" * 256_001
    inputs = [
        {"messages": [{"role": "user", "content": too_long}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 200_000},
                                                    {"type": "text", "text": "y" * 56_001}]}]},
        {"messages": [("system", too_long)]},
        {"messages": too_long},
    ]
    for value in inputs:
        for path in (f"/threads/{thread_id}/runs", f"/threads/{thread_id}/runs/stream",
                     f"/threads/{thread_id}/runs/wait", "/runs", "/runs/stream", "/runs/wait"):
            r = lg_http.post(path, json={"assistant_id": "agent", "input": value})
            assert r.status_code == 422, (path, r.status_code, r.text[:200])
            assert r.json() == {"detail": "Invalid 'input.messages[0]': the text of a message is at most 256000 "
                                          "characters, this one has 256001."}
        r = lg_http.post(f"/threads/{thread_id}/state", json={"values": value})
        assert r.status_code == 422 and "256000" in r.json()["detail"]
    assert_serving(lg_http)

    async def main():
        lg = lg_client(server)
        with pytest.raises(UnprocessableEntityError) as refused:
            await lg.runs.create(thread_id, "agent", input={"messages": [{"role": "user", "content": too_long}]})
        fits = await lg.threads.update_state(thread_id, {"messages": [{"role": "user", "content": "z" * 256_000}]})
        state = await lg.threads.get_state(thread_id)
        return refused.value, fits, state

    refused, fits, state = run(main())
    assert refused.status_code == 422 and "256000" in refused.body["detail"]
    assert fits["checkpoint"] and state["values"]["messages"][-1]["content"] == "z" * 256_000
