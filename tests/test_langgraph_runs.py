"""LangGraph runs on the engine: background runs, wait, join, cancel, list/get/delete,
multitask strategies, if_not_exists, threadless runs and the resumable join stream."""


import asyncio

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from langgraph_support import client as lg_client, collect, run, slow_reply, wait_status

HI = {"messages": [{"role": "user", "content": "hi"}]}


def _texts(state) -> list[tuple[str, str]]:
    return [(m["type"], m["content"]) for m in state["values"].get("messages", [])]


def test_background_run_then_join_and_get(server, upstream):
    upstream.script({"text": "background answer"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        joined = await lg.runs.join(thread["thread_id"], created["run_id"])
        got = await lg.runs.get(thread["thread_id"], created["run_id"])
        return thread, created, joined, got

    thread, created, joined, got = run(main())
    assert created["status"] == "pending" and created["thread_id"] == thread["thread_id"]
    assert created["assistant_id"] and created["multitask_strategy"] == "enqueue"
    assert set(created) >= {"run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata", "kwargs"}
    assert [m["content"] for m in joined["messages"]] == ["hi", "background answer"]
    assert got["status"] == "success"


def test_wait_returns_the_final_values(server, upstream):
    upstream.script({"text": "waited"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create(metadata={"user": "ada"})
        out = await lg.runs.wait(thread["thread_id"], "agent", input=HI, metadata={"k": "v"})
        runs = await lg.runs.list(thread["thread_id"])
        after = await lg.threads.get(thread["thread_id"])
        return out, runs, after

    out, runs, after = run(main())
    assert [(m["type"], m["content"]) for m in out["messages"]] == [("human", "hi"), ("ai", "waited")]
    assert runs[0]["status"] == "success" and runs[0]["metadata"] == {"k": "v"}
    assert after["status"] == "idle"
    assert after["metadata"]["user"] == "ada" and after["metadata"]["graph_id"] == "agent"


def test_threadless_wait_and_background_runs(server, upstream):
    upstream.script({"text": "no thread needed"}, {"text": "later"})

    async def main():
        lg = lg_client(server)
        out = await lg.runs.wait(None, "agent", input=HI)
        created = await lg.runs.create(None, "agent", input=HI)
        return out, created

    out, created = run(main())
    assert out["messages"][-1]["content"] == "no thread needed"
    assert created["status"] == "pending"


def test_if_not_exists_create_makes_the_thread(server, upstream):
    upstream.script({"text": "made it"})
    import uuid

    thread_id = str(uuid.uuid4())

    async def main():
        lg = lg_client(server)
        with pytest.raises(NotFoundError) as missing:
            await lg.runs.create(thread_id, "agent", input=HI)
        assert missing.value.body == {"detail": f"Thread with ID {thread_id} not found"}
        out = await lg.runs.wait(thread_id, "agent", input=HI, if_not_exists="create")
        return out, await lg.threads.get(thread_id)

    out, thread = run(main())
    assert out["messages"][-1]["content"] == "made it"
    assert thread["thread_id"] == thread_id


def test_cancel_a_running_run(server, upstream):
    upstream.script(slow_reply(delay=0.3))

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        await wait_status(lg, thread["thread_id"], created["run_id"], "running")
        await lg.runs.cancel(thread["thread_id"], created["run_id"], wait=True)
        got = await lg.runs.get(thread["thread_id"], created["run_id"])
        return got, await lg.threads.get(thread["thread_id"])

    got, thread = run(main())
    assert got["status"] == "interrupted"
    assert thread["status"] == "idle"


def test_cancel_with_rollback_deletes_the_run_and_what_it_wrote(server, upstream):
    upstream.script(slow_reply(delay=0.3))

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        await wait_status(lg, thread["thread_id"], created["run_id"], "running")
        await lg.runs.cancel(thread["thread_id"], created["run_id"], wait=True, action="rollback")
        with pytest.raises(NotFoundError):
            await lg.runs.get(thread["thread_id"], created["run_id"])
        return await lg.threads.get_state(thread["thread_id"]), await lg.runs.list(thread["thread_id"])

    state, runs = run(main())
    assert _texts(state) == [] and runs == []


def test_reject_strategy_refuses_a_second_run_with_409(server, upstream):
    upstream.script(slow_reply(delay=0.2))

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        first = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        with pytest.raises(ConflictError) as refused:
            await lg.runs.create(thread["thread_id"], "agent", input=HI, multitask_strategy="reject")
        await lg.runs.cancel(thread["thread_id"], first["run_id"], wait=True)
        return refused.value

    refused = run(main())
    assert refused.status_code == 409
    assert refused.body == {"detail": "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."}


def test_enqueue_strategy_runs_one_after_the_other(server, upstream):
    upstream.script(slow_reply("first answer", delay=0.1), {"text": "second answer"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        first = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "one"}]})
        second = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "two"}]})
        busy = await lg.threads.get(thread["thread_id"])
        pending = await lg.runs.get(thread["thread_id"], second["run_id"])
        await lg.runs.join(thread["thread_id"], second["run_id"])
        statuses = [await lg.runs.get(thread["thread_id"], r["run_id"]) for r in (first, second)]
        return busy, pending, statuses, await lg.threads.get_state(thread["thread_id"])

    busy, pending, statuses, state = run(main())
    assert busy["status"] == "busy"
    assert pending["status"] == "pending"
    assert [s["status"] for s in statuses] == ["success", "success"]
    assert _texts(state) == [("human", "one"), ("ai", "first answer"), ("human", "two"), ("ai", "second answer")]
    # the second model call saw the first exchange
    assert [m["content"] for m in upstream.requests()[-1]["messages"]] == ["one", "first answer", "two"]


def test_interrupt_strategy_cancels_the_run_in_flight(server, upstream):
    upstream.script(slow_reply(delay=0.3), {"text": "the new one"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        first = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "one"}]})
        await wait_status(lg, thread["thread_id"], first["run_id"], "running")
        second = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "two"}]},
                                      multitask_strategy="interrupt")
        out = await lg.runs.join(thread["thread_id"], second["run_id"])
        return (await lg.runs.get(thread["thread_id"], first["run_id"]))["status"], out

    first_status, out = run(main())
    assert first_status == "interrupted"
    assert out["messages"][-1]["content"] == "the new one"
    assert [m["content"] for m in out["messages"]][0] == "one"  # an interrupted run keeps what it wrote


def test_rollback_strategy_removes_the_run_in_flight(server, upstream):
    upstream.script(slow_reply(delay=0.3), {"text": "after rollback"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        first = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "one"}]})
        await wait_status(lg, thread["thread_id"], first["run_id"], "running")
        second = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "two"}]},
                                      multitask_strategy="rollback")
        out = await lg.runs.join(thread["thread_id"], second["run_id"])
        with pytest.raises(NotFoundError):
            await lg.runs.get(thread["thread_id"], first["run_id"])
        return out

    out = run(main())
    assert [(m["type"], m["content"]) for m in out["messages"]] == [("human", "two"), ("ai", "after rollback")]


def test_list_filters_and_delete(server, upstream):
    upstream.script({"text": "a"}, {"text": "b"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        r1 = await lg.runs.wait(thread["thread_id"], "agent", input=HI)
        r2 = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        await lg.runs.join(thread["thread_id"], r2["run_id"])
        runs = await lg.runs.list(thread["thread_id"])
        limited = await lg.runs.list(thread["thread_id"], limit=1, offset=1)
        errors = await lg.runs.list(thread["thread_id"], status="error")
        await lg.runs.delete(thread["thread_id"], r2["run_id"])
        with pytest.raises(NotFoundError):
            await lg.runs.get(thread["thread_id"], r2["run_id"])
        with pytest.raises(NotFoundError):
            await lg.runs.delete(thread["thread_id"], r2["run_id"])
        return r1, r2, runs, limited, errors, await lg.runs.list(thread["thread_id"])

    _, r2, runs, limited, errors, after = run(main())
    assert len(runs) == 2 and runs[0]["run_id"] == r2["run_id"]  # newest first
    assert len(limited) == 1 and limited[0]["run_id"] == runs[1]["run_id"]
    assert errors == []
    assert len(after) == 1


def test_resumable_join_stream_replays_and_resumes_after_last_event_id(server, upstream):
    upstream.script(slow_reply("alpha beta gamma delta", delay=0.1))

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI, stream_mode=["messages-tuple", "updates"],
                                       stream_resumable=True)
        stream = lg.runs.join_stream(thread["thread_id"], created["run_id"])
        first = []
        async for part in stream:
            first.append(part)
            if len(first) == 3:
                break
        await stream.aclose()
        rest = [p async for p in lg.runs.join_stream(thread["thread_id"], created["run_id"], last_event_id=first[-1].id)]
        full = [p async for p in lg.runs.join_stream(thread["thread_id"], created["run_id"])]
        return first, rest, full

    first, rest, full = run(main())
    assert [p.event for p in first] == ["metadata", "messages", "messages"]
    assert all(p.id for p in first + rest)
    assert [(p.event, p.id) for p in first + rest] == [(p.event, p.id) for p in full]
    assert [p.event for p in full][-1] == "updates"
    text = "".join(p.data[0]["content"] for p in full if p.event == "messages")
    assert text == "alpha beta gamma delta"


def test_join_stream_of_a_live_run_with_other_modes(server, upstream):
    upstream.script(slow_reply("one two three", delay=0.1))

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI, stream_mode="values", stream_resumable=True)
        return await collect(lg.runs.join_stream(thread["thread_id"], created["run_id"], stream_mode="updates"))

    parts = run(main())
    assert [e for e, _ in parts] == ["metadata", "updates"]


def test_stream_on_disconnect_cancel_cancels_the_run(server, upstream):
    upstream.script(slow_reply(delay=0.3))
    thread = run(lg_client(server).threads.create())
    url = f"{server.url}/threads/{thread['thread_id']}/runs/stream"
    body = {"assistant_id": "agent", "input": HI, "stream_mode": "messages-tuple", "on_disconnect": "cancel"}
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", url, json=body) as response:
            run_id = response.headers["content-location"].rsplit("/", 1)[1]
            for line in response.iter_lines():
                if line.startswith("event: messages"):
                    break

    async def main():
        lg = lg_client(server)
        return await wait_status(lg, thread["thread_id"], run_id, "interrupted")

    assert run(main())["status"] == "interrupted"


def test_run_errors_use_langgraph_shapes(server, upstream):
    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        with pytest.raises(UnprocessableEntityError) as bad_assistant:
            await lg.runs.create(thread["thread_id"], "no-such-graph", input=HI)
        with pytest.raises(NotFoundError) as missing_assistant:
            await lg.runs.create(thread["thread_id"], "1b4e28ba-2fa1-11d2-883f-0016d3cca427", input=HI)
        with pytest.raises(UnprocessableEntityError) as bad_mode:
            await lg.runs.create(thread["thread_id"], "agent", input=HI, stream_mode="nope")
        with pytest.raises(NotFoundError) as missing_run:
            await lg.runs.get(thread["thread_id"], "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
        with pytest.raises(UnprocessableEntityError) as bad_run_id:
            await lg.runs.get(thread["thread_id"], "not-a-uuid")
        return bad_assistant.value, missing_assistant.value, bad_mode.value, missing_run.value, bad_run_id.value

    bad_assistant, missing_assistant, bad_mode, missing_run, bad_run_id = run(main())
    assert bad_assistant.body["detail"].startswith("Invalid assistant: 'no-such-graph'")
    assert missing_assistant.body == {"detail": "Thread or assistant not found."}
    assert bad_mode.body["detail"].startswith("stream_mode")
    assert missing_run.body == {"detail": "Run 1b4e28ba-2fa1-11d2-883f-0016d3cca427 not found"}
    assert bad_run_id.body == {"detail": "Invalid run ID: must be a UUID"}


def test_cancel_a_pending_run_lets_the_queue_go_on(server, upstream):
    upstream.script(slow_reply("first", delay=0.2), {"text": "third"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        first = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "one"}]})
        second = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "two"}]})
        third = await lg.runs.create(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "three"}]})
        await lg.runs.cancel(thread["thread_id"], second["run_id"])
        out = await lg.runs.join(thread["thread_id"], third["run_id"])
        statuses = [(await lg.runs.get(thread["thread_id"], r["run_id"]))["status"] for r in (first, second, third)]
        return statuses, out

    statuses, out = run(main())
    assert statuses == ["success", "interrupted", "success"]
    assert [m["content"] for m in out["messages"]] == ["one", "first", "three", "third"]


def test_a_threadless_run_deletes_its_thread_when_done(server, upstream):
    upstream.script({"text": "gone soon"})

    async def main():
        lg = lg_client(server)
        created = await lg.runs.create(None, "agent", input=HI)
        for _ in range(200):
            try:
                await lg.threads.get(created["thread_id"])
            except NotFoundError:
                return True
            await asyncio.sleep(0.05)
        return False

    assert run(main()) is True


def test_bulk_cancel_and_batch_create(server, upstream):
    upstream.default(slow_reply(delay=2.0))  # the batch's runs are still going when cancelled

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        await wait_status(lg, thread["thread_id"], created["run_id"], "running")
        await lg.runs.cancel_many(thread_id=thread["thread_id"], run_ids=[created["run_id"]])
        cancelled = await wait_status(lg, thread["thread_id"], created["run_id"], "interrupted")
        batch = await lg.runs.create_batch([{"assistant_id": "agent", "input": HI}, {"assistant_id": "agent", "input": HI}])
        with pytest.raises(NotFoundError):
            await lg.runs.cancel_many(thread_id=thread["thread_id"], run_ids=["1b4e28ba-2fa1-11d2-883f-0016d3cca427"])
        # Nothing to cancel in a run that has ended, as LangGraph's server answers.
        for cancel in (lg.runs.cancel(thread["thread_id"], created["run_id"]),
                       lg.runs.cancel_many(thread_id=thread["thread_id"], run_ids=[created["run_id"]])):
            with pytest.raises(NotFoundError) as ended:
                await cancel
            assert "haven't been deleted or completed" in str(ended.value)
        for run_ in batch:
            await lg.runs.cancel(run_["thread_id"], run_["run_id"], wait=True)
        return cancelled, batch

    cancelled, batch = run(main())
    assert cancelled["status"] == "interrupted"
    assert len(batch) == 2 and all(r["status"] == "pending" for r in batch)


def test_join_stream_of_a_finished_run_that_was_not_resumable_is_empty(server, upstream):
    upstream.script({"text": "done already"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        await lg.runs.join(thread["thread_id"], created["run_id"])
        return await collect(lg.runs.join_stream(thread["thread_id"], created["run_id"]))

    assert run(main()) == []


def test_ok_and_info(server):
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/ok").json() == {"ok": True}
        info = http.get("/info").json()
        assert info["flags"]["assistants"] is True
