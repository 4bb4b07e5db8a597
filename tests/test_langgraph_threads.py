"""LangGraph threads: create / get / patch / delete / search / count / copy, state and
history, statuses, and error shapes."""

import uuid

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from langgraph_support import client as lg_client, run, slow_reply, wait_status

HI = {"messages": [{"role": "user", "content": "hi"}]}


def test_create_get_patch_delete(server):
    thread_id = str(uuid.uuid4())

    async def main():
        lg = lg_client(server)
        created = await lg.threads.create(thread_id=thread_id, metadata={"owner": "ada", "n": {"deep": 1}})
        got = await lg.threads.get(thread_id)
        patched = await lg.threads.update(thread_id, metadata={"more": [1, 2]})
        with pytest.raises(ConflictError) as exists:
            await lg.threads.create(thread_id=thread_id)
        same = await lg.threads.create(thread_id=thread_id, if_exists="do_nothing")
        await lg.threads.delete(thread_id)
        with pytest.raises(NotFoundError) as missing:
            await lg.threads.get(thread_id)
        return created, got, patched, exists.value, same, missing.value

    created, got, patched, exists, same, missing = run(main())
    assert created == got
    assert created["thread_id"] == thread_id and created["status"] == "idle" and created["values"] == {}
    assert created["metadata"] == {"owner": "ada", "n": {"deep": 1}} and created["interrupts"] == {}
    assert patched["metadata"] == {"owner": "ada", "n": {"deep": 1}, "more": [1, 2]}
    assert exists.body == {"detail": f"Thread with ID {thread_id} already exists"}
    assert same["thread_id"] == thread_id
    assert missing.body == {"detail": f"Thread with ID {thread_id} not found"}


def test_state_history_and_copy(server, upstream):
    upstream.script({"text": "first"}, {"text": "second"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        empty = await lg.threads.get_state(thread["thread_id"])
        await lg.runs.wait(thread["thread_id"], "agent", input=HI)
        await lg.runs.wait(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "again"}]})
        state = await lg.threads.get_state(thread["thread_id"])
        history = await lg.threads.get_history(thread["thread_id"], limit=10)
        older = await lg.threads.get_history(thread["thread_id"], limit=2, before={"checkpoint_id": history[1]["checkpoint_id"]})
        at = await lg.threads.get_state(thread["thread_id"], checkpoint_id=history[2]["checkpoint_id"])
        copy = await lg.threads.copy(thread["thread_id"])
        copied_state = await lg.threads.get_state(copy["thread_id"])
        return empty, state, history, older, at, copy, copied_state

    empty, state, history, older, at, copy, copied_state = run(main())
    assert empty["values"] == {} and empty["next"] == [] and empty["checkpoint"] is None
    assert [(m["type"], m["content"]) for m in state["values"]["messages"]] == [
        ("human", "hi"), ("ai", "first"), ("human", "again"), ("ai", "second")]
    assert state["next"] == [] and state["checkpoint"]["checkpoint_id"] == state["checkpoint_id"]
    assert [len(h["values"]["messages"]) for h in history] == [4, 3, 2, 1]
    assert history[0]["checkpoint_id"] == state["checkpoint_id"]
    assert history[1]["checkpoint_id"] == history[0]["parent_checkpoint_id"]
    assert [h["checkpoint_id"] for h in older] == [h["checkpoint_id"] for h in history[2:4]]
    assert at["values"]["messages"] == state["values"]["messages"][:2]
    assert copy["thread_id"] != state["checkpoint"]["thread_id"]
    assert [m["content"] for m in copied_state["values"]["messages"]] == ["hi", "first", "again", "second"]


def test_a_busy_thread_and_its_values(server, upstream):
    upstream.script(slow_reply(delay=0.2))

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        created = await lg.runs.create(thread["thread_id"], "agent", input=HI)
        await wait_status(lg, thread["thread_id"], created["run_id"], "running")
        busy = await lg.threads.get(thread["thread_id"])
        busy_search = await lg.threads.search(ids=[thread["thread_id"]], status="busy")
        await lg.runs.join(thread["thread_id"], created["run_id"])
        idle = await lg.threads.get(thread["thread_id"])
        return busy, busy_search, idle

    busy, busy_search, idle = run(main())
    assert busy["status"] == "busy" and [t["thread_id"] for t in busy_search] == [busy["thread_id"]]
    assert idle["status"] == "idle"
    assert [m["type"] for m in idle["values"]["messages"]] == ["human", "ai"]


def test_search_and_count(server, upstream):
    tag = uuid.uuid4().hex
    upstream.script({"text": "valued"})

    async def main():
        lg = lg_client(server)
        made = [await lg.threads.create(metadata={"tag": tag, "i": i}) for i in range(3)]
        await lg.runs.wait(made[0]["thread_id"], "agent", input=HI)
        page = await lg.threads.search(metadata={"tag": tag}, limit=2)
        rest = await lg.threads.search(metadata={"tag": tag}, limit=2, offset=2)
        oldest_first = await lg.threads.search(metadata={"tag": tag}, sort_by="created_at", sort_order="asc")
        one = await lg.threads.search(metadata={"tag": tag, "i": 2})
        by_graph = await lg.threads.search(metadata={"tag": tag, "graph_id": "agent"})
        selected = await lg.threads.search(metadata={"tag": tag}, select=["thread_id", "status"])
        count = await lg.threads.count(metadata={"tag": tag})
        idle = await lg.threads.count(metadata={"tag": tag}, status="idle")
        return made, page, rest, oldest_first, one, by_graph, selected, count, idle

    made, page, rest, oldest_first, one, by_graph, selected, count, idle = run(main())
    ids = [t["thread_id"] for t in made]
    assert [t["thread_id"] for t in page + rest] == ids[::-1]
    assert [t["thread_id"] for t in oldest_first] == ids
    assert [t["thread_id"] for t in one] == [ids[2]]
    assert [t["thread_id"] for t in by_graph] == [ids[0]]
    assert set(selected[0]) == {"thread_id", "status"}
    assert count == 3 and idle == 3


def test_a_v1_thread_is_a_thread_here(server, upstream, client):
    upstream.script({"text": "continued"})
    v1 = client.beta.threads.create(messages=[{"role": "user", "content": "started on /v1"}])

    async def main():
        lg = lg_client(server)
        got = await lg.threads.get(v1.id)
        out = await lg.runs.wait(v1.id, "agent", input={"messages": [{"role": "user", "content": "and here"}]})
        return got, out

    got, out = run(main())
    assert got["thread_id"] == v1.id and got["values"]["messages"][0]["content"] == "started on /v1"
    assert [m["content"] for m in out["messages"]] == ["started on /v1", "and here", "continued"]


def test_thread_errors(server):
    async def main():
        lg = lg_client(server)
        with pytest.raises(UnprocessableEntityError) as bad_id:
            await lg.threads.get("not-a-uuid")
        with pytest.raises(UnprocessableEntityError) as bad_create:
            await lg.threads.create(thread_id="not-a-uuid")
        with pytest.raises(NotFoundError) as missing:
            await lg.threads.delete(str(uuid.uuid4()))
        with pytest.raises(UnprocessableEntityError) as bad_search:
            await lg.threads.search(status="sleepy")  # type: ignore[arg-type]
        return bad_id.value, bad_create.value, missing.value, bad_search.value

    bad_id, bad_create, missing, bad_search = run(main())
    assert bad_id.body == {"detail": "Invalid thread ID: must be a UUID"}
    assert bad_create.body == {"detail": "Invalid thread ID: must be a UUID"}
    assert missing.status_code == 404 and missing.body["detail"].startswith("Thread with ID ")
    assert bad_search.body["detail"].startswith("status: Input should be ")


def test_update_state_adds_messages(server, upstream):
    upstream.script({"text": "seen both"})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        update = await lg.threads.update_state(thread["thread_id"], {"messages": [{"role": "user", "content": "context first"}]})
        out = await lg.runs.wait(thread["thread_id"], "agent", input=HI)
        return update, out

    update, out = run(main())
    assert update["checkpoint"]["checkpoint_id"]
    assert [m["content"] for m in out["messages"]] == ["context first", "hi", "seen both"]
