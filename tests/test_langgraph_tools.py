"""Function tools on the LangGraph door: the model's tool calls interrupt the run (the
engine run waits in requires_action), and a run with command={"resume": ...} carrying the
outputs continues it."""

import pytest
from langgraph_sdk.errors import BadRequestError

from langgraph_support import client as lg_client, collect, events, run

WEATHER_TOOL = {"name": "get_weather", "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK = {"messages": [{"role": "user", "content": "weather in Paris?"}]}


def _tool_turn(*calls, text=""):
    return {"text": text, "tool_calls": [{"name": n, "arguments": a} for n, a in calls]}


def test_tool_calls_interrupt_and_resume_continues_the_run(server, upstream):
    upstream.script(_tool_turn(("get_weather", {"city": "Paris"}), text="Checking."), {"text": "Sunny, 22C in Paris."})

    async def main():
        lg = lg_client(server)
        assistant = await lg.assistants.create(graph_id="agent", context={"model": "tool-model", "tools": [WEATHER_TOOL]})
        thread = await lg.threads.create()
        first = await collect(lg.runs.stream(thread["thread_id"], assistant["assistant_id"], input=ASK, stream_mode="updates"))
        interrupted = await lg.threads.get(thread["thread_id"])
        state = await lg.threads.get_state(thread["thread_id"])
        interrupt = events(first, "updates")[-1]["__interrupt__"][0]
        call_id = interrupt["value"]["tool_calls"][0]["id"]
        second = await collect(lg.runs.stream(thread["thread_id"], assistant["assistant_id"],
                                              command={"resume": {call_id: "sunny, 22C"}}, stream_mode=["updates"]))
        runs = await lg.runs.list(thread["thread_id"])
        return first, interrupted, state, second, runs, await lg.threads.get_state(thread["thread_id"])

    first, interrupted, state, second, runs, final = run(main())
    updates = events(first, "updates")
    ai = updates[0]["agent"]["messages"][0]
    assert ai["content"] == "Checking."
    assert [(c["name"], c["args"]) for c in ai["tool_calls"]] == [("get_weather", {"city": "Paris"})]
    interrupt = updates[1]["__interrupt__"][0]
    assert interrupt["id"] and interrupt["value"]["tool_calls"][0]["id"] == ai["tool_calls"][0]["id"]
    assert interrupted["status"] == "interrupted"
    assert list(interrupted["interrupts"].values()) == [[interrupt]]
    assert state["next"] == ["tools"] and state["tasks"][0]["interrupts"] == [interrupt]
    assert state["interrupts"] == [interrupt]

    resumed = events(second, "updates")
    tool_message = resumed[0]["tools"]["messages"][0]
    assert tool_message["type"] == "tool" and tool_message["content"] == "sunny, 22C"
    assert tool_message["tool_call_id"] == ai["tool_calls"][0]["id"] and tool_message["name"] == "get_weather"
    assert resumed[1]["agent"]["messages"][0]["content"] == "Sunny, 22C in Paris."
    assert [r["status"] for r in runs] == ["success", "success"]
    assert [m["type"] for m in final["values"]["messages"]] == ["human", "ai", "tool", "ai"]
    assert final["next"] == []

    # one engine run did it all: the model saw its call and the output
    sent = upstream.requests()[-1]
    assert sent["model"] == "tool-model"
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "assistant", "tool"]
    assert sent["messages"][-1]["content"] == "sunny, 22C"


def test_wait_returns_the_interrupt_and_resume_accepts_a_single_output(server, upstream):
    upstream.script(_tool_turn(("get_weather", {"city": "Oslo"})), {"text": "Cold."})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        out = await lg.runs.wait(thread["thread_id"], "agent", input=ASK, config={"configurable": {"tools": [WEATHER_TOOL]}})
        resumed = await lg.runs.wait(thread["thread_id"], "agent", command={"resume": "-5C"},
                                     config={"configurable": {"tools": [WEATHER_TOOL]}})
        return out, resumed

    out, resumed = run(main())
    assert out["__interrupt__"][0]["value"]["tool_calls"][0]["args"] == {"city": "Oslo"}
    assert out["messages"][-1]["tool_calls"][0]["name"] == "get_weather"
    assert "__interrupt__" not in resumed
    assert [(m["type"], m["content"]) for m in resumed["messages"][-2:]] == [("tool", "-5C"), ("ai", "Cold.")]


def test_parallel_tool_calls_resume_with_tool_messages(server, upstream):
    upstream.script(_tool_turn(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})), {"text": "Both fine."})

    async def main():
        lg = lg_client(server)
        assistant = await lg.assistants.create(graph_id="agent", config={"configurable": {"tools": [WEATHER_TOOL]}})
        thread = await lg.threads.create()
        out = await lg.runs.wait(thread["thread_id"], assistant["assistant_id"], input=ASK)
        calls = out["__interrupt__"][0]["value"]["tool_calls"]
        answers = [{"type": "tool", "tool_call_id": c["id"], "content": f"fine in {c['args']['city']}"} for c in calls]
        parts = await collect(lg.runs.stream(thread["thread_id"], assistant["assistant_id"], command={"resume": answers},
                                             stream_mode="messages-tuple"))
        return calls, parts

    calls, parts = run(main())
    messages = events(parts, "messages")
    tool_messages = [m for m, meta in messages if m["type"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["fine in Paris", "fine in Rome"]
    assert all(meta["langgraph_node"] == "tools" and meta["langgraph_step"] == 2 for m, meta in messages if m["type"] == "tool")
    assert all(meta["langgraph_step"] == 3 for m, meta in messages if meta["langgraph_node"] == "agent")
    assert "".join(m["content"] for m, meta in messages if meta["langgraph_node"] == "agent") == "Both fine."


def test_tool_messages_as_input_resume_too(server, upstream):
    upstream.script(_tool_turn(("get_weather", {"city": "Lima"})), {"text": "Warm."})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        cfg = {"configurable": {"tools": [WEATHER_TOOL]}}
        out = await lg.runs.wait(thread["thread_id"], "agent", input=ASK, config=cfg)
        call = out["__interrupt__"][0]["value"]["tool_calls"][0]
        return await lg.runs.wait(thread["thread_id"], "agent", config=cfg, input={
            "messages": [{"role": "tool", "tool_call_id": call["id"], "content": "25C"}]})

    out = run(main())
    assert [(m["type"], m["content"]) for m in out["messages"][-2:]] == [("tool", "25C"), ("ai", "Warm.")]


def test_a_resume_that_does_not_answer_the_calls_is_refused(server, upstream):
    upstream.script(_tool_turn(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})))

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        cfg = {"configurable": {"tools": [WEATHER_TOOL]}}
        await lg.runs.wait(thread["thread_id"], "agent", input=ASK, config=cfg)
        with pytest.raises(BadRequestError) as refused:
            await lg.runs.create(thread["thread_id"], "agent", command={"resume": {"call_nope": "x"}}, config=cfg)
        return refused.value, await lg.threads.get(thread["thread_id"])

    refused, thread = run(main())
    assert refused.body["detail"].startswith("The resume value must answer the pending tool calls")
    assert thread["status"] == "interrupted"


def test_new_input_on_an_interrupted_thread_drops_the_pending_calls(server, upstream):
    upstream.script(_tool_turn(("get_weather", {"city": "Paris"})), {"text": "Never mind then."})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        cfg = {"configurable": {"tools": [WEATHER_TOOL]}}
        first = await lg.runs.wait(thread["thread_id"], "agent", input=ASK, config=cfg)
        out = await lg.runs.wait(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "forget it"}]},
                                 config=cfg)
        return first, out, await lg.runs.list(thread["thread_id"]), await lg.threads.get(thread["thread_id"])

    first, out, runs, thread = run(main())
    assert "__interrupt__" in first
    assert [(m["type"], m["content"]) for m in out["messages"]] == [
        ("human", "weather in Paris?"), ("human", "forget it"), ("ai", "Never mind then.")]
    assert [r["status"] for r in runs] == ["success", "success"]
    assert thread["status"] == "idle"


def test_an_openai_assistant_with_tools_used_from_this_door(server, upstream, client):
    upstream.script(_tool_turn(("lookup", {"q": "x"})), {"text": "Found it."})
    assistant = client.beta.assistants.create(
        model="v1-model", instructions="You look things up.",
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}],
    )

    async def main():
        lg = lg_client(server)
        got = await lg.assistants.get(assistant.id)
        thread = await lg.threads.create()
        out = await lg.runs.wait(thread["thread_id"], assistant.id, input={"messages": [{"role": "user", "content": "find x"}]})
        call_id = out["__interrupt__"][0]["value"]["tool_calls"][0]["id"]
        done = await lg.runs.wait(thread["thread_id"], assistant.id, command={"resume": {call_id: "x is 42"}})
        return got, out, done

    got, out, done = run(main())
    assert got["assistant_id"] == assistant.id and got["graph_id"] == "agent"
    assert got["config"]["configurable"] == {"model": "v1-model", "system_prompt": "You look things up."}
    assert done["messages"][-1]["content"] == "Found it."
    sent = upstream.requests()[-1]
    assert sent["model"] == "v1-model"
    assert sent["messages"][0] == {"role": "system", "content": "You look things up."}
    assert sent["tools"][0]["function"]["name"] == "lookup"


def test_a_resume_after_the_interrupt_expired_fails_visibly(server_factory, upstream):
    short = server_factory("--upstream", upstream.url, "--run-ttl", "4")
    upstream.script(_tool_turn(("get_weather", {"city": "Paris"})))

    async def main():
        import asyncio

        lg = lg_client(short)
        thread = await lg.threads.create()
        cfg = {"configurable": {"tools": [WEATHER_TOOL]}}
        out = await lg.runs.wait(thread["thread_id"], "agent", input=ASK, config=cfg)
        call_id = out["__interrupt__"][0]["value"]["tool_calls"][0]["id"]
        for _ in range(100):
            if (await lg.threads.get(thread["thread_id"]))["status"] != "interrupted":
                break
            await asyncio.sleep(0.1)
        parts = await collect(lg.runs.stream(thread["thread_id"], "agent", command={"resume": {call_id: "late"}},
                                             config=cfg, stream_mode="updates"))
        return parts, await lg.runs.list(thread["thread_id"])

    parts, runs = run(main())
    assert [e for e, _ in parts] == ["metadata", "error"]
    assert "expired" in events(parts, "error")[0]["message"]
    assert runs[0]["status"] == "error"
