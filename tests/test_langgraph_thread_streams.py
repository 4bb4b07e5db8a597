"""A thread's stream of all its runs (GET /threads/{id}/stream, the SDK's
threads.join_stream) and threads.prune, driven by the official langgraph-sdk against a
server process: with the user's graphs of tests/graphs/ and with the built-in graph (its
model: the scripted upstream, standing in for the LLM)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from langgraph_support import client, run

GRAPHS = Path(__file__).parent / "graphs" / "langgraph.json"


@pytest.fixture(scope="module")
def graphs_server(server_factory):
    return server_factory("--langgraph-config", str(GRAPHS))


async def _read(joining, runs_done: int, timeout: float = 20.0) -> list:
    """The stream's parts until `runs_done` runs have ended on it. `joining`: what the
    SDK's threads.join_stream returns (awaited, it gives the stream)."""
    parts = []

    async def read():
        async for part in await joining:
            parts.append(part)
            if sum(1 for p in parts if p.event == "metadata" and p.data.get("status") == "run_done") == runs_done:
                return

    await asyncio.wait_for(read(), timeout)
    return parts


def _run_ids(parts) -> list[str]:
    return [p.data["run_id"] for p in parts if p.event == "metadata" and "attempt" in p.data]


def test_a_thread_stream_follows_each_run_then_waits_for_the_next(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        joined = asyncio.ensure_future(_read(lg.threads.join_stream(tid), runs_done=2))
        await asyncio.sleep(0.5)  # the stream is open before the runs exist
        first = await lg.runs.create(tid, "progress", input={"steps": 2, "delay": 0.2}, stream_mode=["values", "custom"])
        second = await lg.runs.create(tid, "progress", input={"steps": 1}, multitask_strategy="enqueue")
        parts = await joined
        assert _run_ids(parts) == [first["run_id"], second["run_id"]]
        # Each run's own events, in its own stream modes, then its run_done.
        names = [p.event for p in parts]
        assert names[:6] == ["metadata", "values", "custom", "custom", "values", "metadata"]
        assert [p.data for p in parts if p.event == "custom"] == [{"progress": 1, "of": 2}, {"progress": 2, "of": 2}]
        assert parts[5].data == {"status": "run_done", "run_id": first["run_id"]}
        assert parts[-1].data == {"status": "run_done", "run_id": second["run_id"]}
        assert [p.data for p in parts if p.event == "values"][-1]["done"] == 1
        assert len({p.id for p in parts}) == len(parts)

        # From the thread's first run ('-'), in other modes.
        everything = await _read(lg.threads.join_stream(tid, last_event_id="-", stream_mode="lifecycle"), runs_done=2)
        assert [(p.event, p.data.get("status")) for p in everything] == [("metadata", None), ("metadata", "run_done")] * 2
        states = await _read(lg.threads.join_stream(tid, last_event_id="-", stream_mode=["state_update", "lifecycle"]),
                             runs_done=2)
        assert [p.event for p in states].count("values") == 4 and "custom" not in [p.event for p in states]

        # Resuming after an event: the rest of that run, then the runs after it.
        resumed = await _read(lg.threads.join_stream(tid, last_event_id=parts[2].id), runs_done=2)
        assert [p.id for p in resumed] == [p.id for p in parts[3:]]
        after_first = await _read(lg.threads.join_stream(tid, last_event_id=parts[5].id), runs_done=1)
        assert _run_ids(after_first) == [second["run_id"]]

    run(go())


def test_joining_a_thread_mid_run_and_the_stream_ends_with_the_thread(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        running = await lg.runs.create(tid, "progress", input={"steps": 4, "delay": 0.3}, stream_mode="custom")
        await asyncio.sleep(0.45)
        parts = await _read(lg.threads.join_stream(tid), runs_done=1)
        progress = [p.data["progress"] for p in parts if p.event == "custom"]
        assert progress and progress == list(range(progress[0], 5)) and progress[0] > 1  # from now on
        assert parts[-1].data == {"status": "run_done", "run_id": running["run_id"]}

        # Deleting the thread ends a stream that waits for its next run.
        async def read_all():
            return [p async for p in await lg.threads.join_stream(tid)]

        waiting = asyncio.ensure_future(read_all())
        await asyncio.sleep(0.5)
        await lg.threads.delete(tid)
        assert await asyncio.wait_for(waiting, 10) == []

    run(go())


def test_a_thread_stream_refuses_a_missing_thread_and_unknown_modes(graphs_server):
    async def go():
        lg = client(graphs_server)
        with pytest.raises(NotFoundError):
            [p async for p in await lg.threads.join_stream("00000000-0000-0000-0000-000000000000")]
        tid = (await lg.threads.create())["thread_id"]
        with pytest.raises(UnprocessableEntityError):
            [p async for p in await lg.threads.join_stream(tid, stream_mode="everything")]

    run(go())


def test_the_built_in_graph_runs_on_a_thread_stream(server, upstream):
    upstream.script({"text": "first answer"}, {"text": "second answer"})

    async def go():
        lg = client(server)
        tid = (await lg.threads.create())["thread_id"]
        joined = asyncio.ensure_future(_read(lg.threads.join_stream(tid), runs_done=2))
        await asyncio.sleep(0.5)
        one = await lg.runs.create(tid, "agent", input={"messages": [{"role": "user", "content": "hi"}]})
        two = await lg.runs.create(tid, "agent", input={"messages": [{"role": "user", "content": "again"}]},
                                   multitask_strategy="enqueue")
        parts = await joined
        assert _run_ids(parts) == [one["run_id"], two["run_id"]]
        finals = [p.data["messages"][-1]["content"] for p in parts if p.event == "values"]
        assert "first answer" in finals and finals[-1] == "second answer"

    run(go())


def test_prune_deletes_threads_or_keeps_their_latest_checkpoint(graphs_server):
    async def go():
        lg = client(graphs_server)
        kept = (await lg.threads.create())["thread_id"]
        await lg.runs.wait(kept, "progress", input={"steps": 1})
        await lg.runs.wait(kept, "progress", input={"steps": 2})
        latest = await lg.threads.get_state(kept)
        assert len(await lg.threads.get_history(kept, limit=100)) > 1

        missing = "00000000-0000-0000-0000-000000000000"
        assert await lg.threads.prune([kept, missing], strategy="keep_latest") == {"pruned_count": 1}
        history = await lg.threads.get_history(kept, limit=100)
        assert [h["checkpoint_id"] for h in history] == [latest["checkpoint_id"]]
        assert (await lg.threads.get_state(kept))["values"] == latest["values"] == {"steps": 2, "done": 2}
        # The thread goes on from its latest state.
        assert (await lg.runs.wait(kept, "progress", input={"steps": 3}))["done"] == 3

        gone = (await lg.threads.create())["thread_id"]
        assert await lg.threads.prune([gone, kept, missing]) == {"pruned_count": 2}
        for thread_id in (gone, kept):
            with pytest.raises(NotFoundError):
                await lg.threads.get(thread_id)

        async with httpx.AsyncClient(base_url=graphs_server.url) as http:
            bad_id = await http.post("/threads/prune", json={"thread_ids": ["not-a-uuid"]})
            bad_strategy = await http.post("/threads/prune", json={"thread_ids": [], "strategy": "everything"})
        assert bad_id.status_code == 422 and bad_strategy.status_code == 422

    run(go())
