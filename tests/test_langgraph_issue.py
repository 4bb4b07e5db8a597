"""The code of issue 5, unchanged, against a real server and the scripted model: LangGraph's
own client runs a graph assistant, streams `updates`, and a second assistant on the same
thread sees the first one's messages."""

from langgraph_support import client as lg_client, collect, events, run


def test_the_issue_code_streams_metadata_then_agent_updates(server, upstream):
    upstream.script({"text": "The threadloom team made me."})

    async def main():
        client_ = lg_client(server)
        openai_assistant = await client_.assistants.create(graph_id="agent", config={"configurable": {"model_name": "openai"}})
        thread = await client_.threads.create()
        printed = []
        async for event in client_.runs.stream(thread["thread_id"], openai_assistant["assistant_id"],
                                               input={"messages": [{"role": "user", "content": "who made you?"}]},
                                               stream_mode="updates"):
            printed.append((event.event, event.data))
        return openai_assistant, thread, printed

    assistant, thread, printed = run(main())
    assert [e for e, _ in printed] == ["metadata", "updates"]
    metadata = printed[0][1]
    assert set(metadata) == {"run_id", "attempt"} and metadata["attempt"] == 1
    update = printed[1][1]
    assert list(update) == ["agent"]
    (message,) = update["agent"]["messages"]
    assert message["content"] == "The threadloom team made me."
    assert message["type"] == "ai"
    assert message["tool_calls"] == [] and message["invalid_tool_calls"] == []
    assert message["additional_kwargs"] == {}
    # What the model server reported, as LangChain's chat models carry it.
    assert message["response_metadata"] == {"model_name": "openai", "finish_reason": "stop"}
    usage = message["usage_metadata"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert message["name"] is None and message["id"]
    # The graph assistant's configured model is the one the model server was asked for.
    sent = upstream.requests()[-1]
    assert sent["model"] == "openai"
    assert sent["messages"] == [{"role": "user", "content": "who made you?"}]


def test_a_second_assistant_on_the_thread_sees_the_first_ones_messages(server, upstream):
    upstream.script({"text": "I am the first."}, {"text": "I am the second."})

    async def main():
        lg = lg_client(server)
        first = await lg.assistants.create(graph_id="agent", config={"configurable": {"model_name": "openai"}})
        second = await lg.assistants.create(graph_id="agent", context={"model_name": "anthropic", "system_prompt": "Be brief."})
        thread = await lg.threads.create()
        await collect(lg.runs.stream(thread["thread_id"], first["assistant_id"],
                                     input={"messages": [{"role": "user", "content": "who made you?"}]}, stream_mode="updates"))
        parts = await collect(lg.runs.stream(thread["thread_id"], second["assistant_id"],
                                             input={"messages": [{"role": "user", "content": "and you?"}]}, stream_mode="updates"))
        state = await lg.threads.get_state(thread["thread_id"])
        return parts, state

    parts, state = run(main())
    assert events(parts, "updates")[0]["agent"]["messages"][0]["content"] == "I am the second."
    sent = upstream.requests()[-1]
    assert sent["model"] == "anthropic"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "who made you?"},
        {"role": "assistant", "content": "I am the first."},
        {"role": "user", "content": "and you?"},
    ]
    assert [(m["type"], m["content"]) for m in state["values"]["messages"]] == [
        ("human", "who made you?"), ("ai", "I am the first."), ("human", "and you?"), ("ai", "I am the second."),
    ]


def test_the_openai_door_sees_the_same_thread(server, upstream, client):
    upstream.script({"text": "Stored once."})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        await lg.runs.wait(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "hello"}]})
        return thread["thread_id"]

    thread_id = run(main())
    messages = client.beta.threads.messages.list(thread_id=thread_id, order="asc")
    assert [(m.role, m.content[0].text.value) for m in messages.data] == [("user", "hello"), ("assistant", "Stored once.")]
