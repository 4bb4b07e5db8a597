"""Each stream mode of the LangGraph door, and its SSE framing, through the official client
and raw HTTP."""

import orjson

from langgraph_support import client as lg_client, collect, events, raw_sse, run


def _stream(server, modes, text="Hello there friend", thread=True, **kwargs):
    async def main():
        lg = lg_client(server)
        thread_id = (await lg.threads.create())["thread_id"] if thread else None
        parts = await collect(lg.runs.stream(thread_id, "agent", input={"messages": [{"role": "user", "content": "hi"}]},
                                             stream_mode=modes, **kwargs))
        return thread_id, parts

    return run(main())


def test_values_mode_streams_the_state_before_and_after_the_agent(server, upstream):
    upstream.script({"text": "Hello there friend"})
    _, parts = _stream(server, "values")
    assert [e for e, _ in parts] == ["metadata", "values", "values"]
    first, last = events(parts, "values")
    assert [(m["type"], m["content"]) for m in first["messages"]] == [("human", "hi")]
    assert [(m["type"], m["content"]) for m in last["messages"]] == [("human", "hi"), ("ai", "Hello there friend")]
    assert first["messages"][0]["id"] == last["messages"][0]["id"]


def test_default_stream_mode_is_values(server, upstream):
    upstream.script({"text": "ok"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        return await collect(lg.runs.stream(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "x"}]}))

    parts = run(main())
    assert [e for e, _ in parts] == ["metadata", "values", "values"]


def test_messages_tuple_mode_streams_token_chunks_with_metadata(server, upstream):
    upstream.script({"text": "Hello there friend", "chunk_size": 5})
    thread_id, parts = _stream(server, "messages-tuple")
    assert parts[0][0] == "metadata"
    chunks = events(parts, "messages")
    assert len(chunks) == 4  # "Hello", " ther", "e fri", "end"
    assert "".join(c[0]["content"] for c in chunks) == "Hello there friend"
    message, meta = chunks[0]
    assert message["type"] == "AIMessageChunk"
    assert len({c[0]["id"] for c in chunks}) == 1
    assert meta["langgraph_node"] == "agent" and meta["langgraph_step"] == 1
    assert meta["thread_id"] == thread_id and meta["ls_model_type"] == "chat"
    # the chunks' message is the one the state keeps
    async def state():
        return await lg_client(server).threads.get_state(thread_id)

    assert run(state())["values"]["messages"][-1]["id"] == message["id"]


def test_messages_mode_streams_metadata_then_growing_partials(server, upstream):
    upstream.script({"text": "Hello there friend", "chunk_size": 6})
    _, parts = _stream(server, "messages")
    names = [e for e, _ in parts]
    assert names == ["metadata", "messages/metadata", "messages/partial", "messages/partial", "messages/partial"]
    (meta,) = events(parts, "messages/metadata")
    partials = events(parts, "messages/partial")
    message_id = partials[0][0]["id"]
    assert list(meta) == [message_id] and meta[message_id]["metadata"]["langgraph_node"] == "agent"
    assert [p[0]["content"] for p in partials] == ["Hello ", "Hello there ", "Hello there friend"]
    assert partials[-1][0]["type"] == "ai"


def test_several_modes_in_one_stream(server, upstream):
    upstream.script({"text": "abcdefgh", "chunk_size": 4})
    _, parts = _stream(server, ["updates", "values", "messages-tuple"])
    names = [e for e, _ in parts]
    assert names == ["metadata", "values", "messages", "messages", "updates", "values"]


def test_a_failed_model_call_streams_an_error_event(server, upstream):
    upstream.script({"status": 500, "error": "the model broke"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        parts = await collect(lg.runs.stream(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "x"}]},
                                             stream_mode="updates"))
        runs = await lg.runs.list(thread["thread_id"])
        return parts, runs, await lg.threads.get(thread["thread_id"])

    parts, runs, thread = run(main())
    assert [e for e, _ in parts] == ["metadata", "error"]
    error = events(parts, "error")[0]
    assert set(error) == {"error", "message"} and error["message"]
    assert runs[0]["status"] == "error"
    assert thread["status"] == "error"


def test_sse_framing_has_ids_and_crlf_like_langgraph(server, upstream):
    upstream.script({"text": "framed", "chunk_size": 3})
    thread = run(lg_client(server).threads.create())
    response, body = raw_sse(f"{server.url}/threads/{thread['thread_id']}/runs/stream",
                             {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "x"}]},
                              "stream_mode": ["messages-tuple", "updates"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    run_id = response.headers["content-location"].rsplit("/", 1)[1]
    assert response.headers["location"] == f"/threads/{thread['thread_id']}/runs/{run_id}/stream"
    frames = [f for f in body.split(b"\r\n\r\n") if f]
    parsed = []
    for f in frames:
        lines = f.split(b"\r\n")
        assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: ") and lines[2].startswith(b"id: ")
        parsed.append((lines[0][7:].decode(), orjson.loads(lines[1][6:]), lines[2][4:].decode()))
    assert [p[0] for p in parsed] == ["metadata", "messages", "messages", "updates"]
    assert parsed[0][1] == {"run_id": run_id, "attempt": 1}
    ids = [tuple(int(x) for x in p[2].split("-")) for p in parsed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_threadless_stream_runs_on_a_temporary_thread(server, upstream):
    upstream.script({"text": "stateless"})
    thread_id, parts = _stream(server, "updates", thread=False)
    assert events(parts, "updates")[0]["agent"]["messages"][0]["content"] == "stateless"
