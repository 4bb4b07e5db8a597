"""LangGraph crons through langgraph-sdk against server processes: runs made on schedule
on a thread or on a new thread each time, searched, changed and deleted, and fired once
per occurrence however many servers share the database. Schedules use the six-field
form (seconds last) so a test waits seconds, not minutes; the graphs are tests/graphs'
`progress` and the built-in `agent` over the scripted model."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from conftest import test_database_url as database_under_test
from langgraph_support import client, run, wait_status

GRAPHS = Path(__file__).parent / "graphs" / "langgraph.json"
EVERY_SECOND = "* * * * * *"
HI = {"messages": [{"role": "user", "content": "what time is it?"}]}


@pytest.fixture(scope="module")
def graphs_server(server_factory, upstream_process):
    return server_factory("--upstream", upstream_process.url, "--langgraph-config", str(GRAPHS))


async def _runs_until(lg, thread_id: str, at_least: int, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        runs = await lg.runs.list(thread_id, limit=100)
        if len(runs) >= at_least:
            return runs
        assert time.monotonic() < deadline, f"{len(runs)} runs after {timeout}s, wanted {at_least}"
        await asyncio.sleep(0.2)


def test_a_thread_cron_fires_runs_on_its_thread_until_deleted(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        cron = await lg.crons.create_for_thread(tid, "progress", schedule=EVERY_SECOND, input={"steps": 1, "delay": 0},
                                                metadata={"owner": "t1"})
        assert cron["thread_id"] == tid and cron["schedule"] == EVERY_SECOND and cron["enabled"] is True
        assert cron["next_run_date"] is not None and cron["payload"]["input"] == {"steps": 1, "delay": 0}
        assert cron["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
        runs = await _runs_until(lg, tid, 2)
        assert all(r["assistant_id"] == cron["assistant_id"] for r in runs)
        assert runs[0]["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
        assert (await lg.threads.get_state(tid))["values"]["done"] == 1

        found = await lg.crons.search(thread_id=tid)
        assert [c["cron_id"] for c in found] == [cron["cron_id"]]
        assert await lg.crons.count(metadata={"owner": "t1"}) == 1
        await lg.crons.delete(cron["cron_id"])
        await asyncio.sleep(1.5)  # a firing claimed just before the delete may still finish
        settled = len(await lg.runs.list(tid, limit=100))
        await asyncio.sleep(2.5)
        assert len(await lg.runs.list(tid, limit=100)) == settled
        with pytest.raises(NotFoundError):
            await lg.crons.delete(cron["cron_id"])

    run(go())


def test_a_stateless_cron_makes_a_thread_per_run_and_keeps_it_when_asked(graphs_server):
    async def go():
        lg = client(graphs_server)
        cron = await lg.crons.create("progress", schedule=EVERY_SECOND, input={"steps": 2}, on_run_completed="keep",
                                     metadata={"owner": "stateless"})
        assert cron["thread_id"] is None
        deadline = time.monotonic() + 15
        while True:
            threads = await lg.threads.search(metadata={"graph_id": "progress"}, limit=100)
            done = [t for t in threads if t["values"].get("done") == 2]
            if len(done) >= 2:
                break
            assert time.monotonic() < deadline, "the stateless cron did not fire twice"
            await asyncio.sleep(0.2)
        await lg.crons.delete(cron["cron_id"])

    run(go())


def test_a_cron_runs_the_builtin_agent_on_its_thread(graphs_server, upstream):
    upstream.default({"text": "tick"})

    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        cron = await lg.crons.create_for_thread(tid, "agent", schedule=EVERY_SECOND, input=HI)
        runs = await _runs_until(lg, tid, 2)
        await lg.crons.delete(cron["cron_id"])
        for r in runs:
            await wait_status(lg, tid, r["run_id"], "success")
        messages = (await lg.threads.get_state(tid))["values"]["messages"]
        assert [m["content"] for m in messages[:2]] == ["what time is it?", "tick"]

    run(go())


def test_a_stateless_cron_deletes_its_threads_by_default(graphs_server, upstream):
    upstream.default({"text": "tock"})

    async def go():
        lg = client(graphs_server)
        before = await lg.threads.count()
        cron = await lg.crons.create("agent", schedule=EVERY_SECOND, input=HI)
        assert cron["on_run_completed"] == "delete"
        deadline = time.monotonic() + 15
        while len(upstream.requests()) < 2:
            assert time.monotonic() < deadline, "the stateless cron did not fire twice"
            await asyncio.sleep(0.2)
        await lg.crons.delete(cron["cron_id"])
        deadline = time.monotonic() + 15
        while await lg.threads.count() != before:
            assert time.monotonic() < deadline, "the cron's threads were kept"
            await asyncio.sleep(0.2)

    run(go())


def test_a_firing_that_fails_leaves_the_other_crons_firing(graphs_server, upstream):
    upstream.default({"text": "still here"})

    async def go():
        lg = client(graphs_server)
        refused, fine = [(await lg.threads.create())["thread_id"] for _ in range(2)]
        # A run may not carry both configurable and context: each of its firings is refused.
        broken = await lg.crons.create_for_thread(refused, "agent", schedule=EVERY_SECOND, input=HI,
                                                  config={"configurable": {"model": "m"}}, context={"model": "m"})
        working = await lg.crons.create_for_thread(fine, "agent", schedule=EVERY_SECOND, input=HI)
        await _runs_until(lg, fine, 3)
        assert await lg.runs.list(refused) == []
        for cron in (broken, working):
            await lg.crons.delete(cron["cron_id"])
        assert f"cron {broken['cron_id']} could not fire" in graphs_server.log()

    run(go())


def test_update_disable_and_end_time(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        cron = await lg.crons.create_for_thread(tid, "progress", schedule="0 0 1 1 *", input={"steps": 1})
        assert datetime.fromisoformat(cron["next_run_date"]).month == 1
        disabled = await lg.crons.update(cron["cron_id"], enabled=False)
        assert disabled["enabled"] is False and disabled["next_run_date"] is None
        assert [c["cron_id"] for c in await lg.crons.search(thread_id=tid, enabled=False)] == [cron["cron_id"]]
        again = await lg.crons.update(cron["cron_id"], enabled=True, schedule=EVERY_SECOND)
        assert again["schedule"] == EVERY_SECOND and again["next_run_date"] is not None
        await _runs_until(lg, tid, 1)
        await lg.crons.delete(cron["cron_id"])

        past = datetime.now(timezone.utc) - timedelta(minutes=1)
        ended = await lg.crons.create_for_thread(tid, "progress", schedule=EVERY_SECOND, input={"steps": 1},
                                                 end_time=past)
        assert ended["next_run_date"] is None
        before = len(await lg.runs.list(tid, limit=100))
        await asyncio.sleep(2.0)
        assert len(await lg.runs.list(tid, limit=100)) == before
        await lg.crons.delete(ended["cron_id"])

    run(go())


def test_bad_crons_are_refused(graphs_server):
    with httpx.Client(base_url=graphs_server.url, timeout=10) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        assert http.post("/runs/crons", json={"assistant_id": "progress", "schedule": "every minute"}).status_code == 422
        assert http.post("/runs/crons", json={"assistant_id": "progress", "schedule": "61 * * * *"}).status_code == 422
        assert http.post("/runs/crons", json={"assistant_id": "progress", "schedule": "* * * * *",
                                              "timezone": "Mars/Olympus"}).status_code == 422
        assert http.post("/runs/crons", json={"assistant_id": "00000000-0000-0000-0000-000000000000",
                                              "schedule": "* * * * *"}).status_code == 404
        assert http.post("/threads/00000000-0000-0000-0000-000000000000/runs/crons",
                         json={"assistant_id": "progress", "schedule": "* * * * *"}).status_code == 404
        assert http.post(f"/threads/{tid}/runs/crons", json={"schedule": "* * * * *"}).status_code == 422
        assert http.get("/runs/crons/00000000-0000-0000-0000-000000000000").status_code == 404
        made = http.post(f"/threads/{tid}/runs/crons", json={"assistant_id": "progress", "schedule": "0 0 1 1 *"}).json()
        assert http.patch(f"/runs/crons/{made['cron_id']}", json={}).status_code == 400
        # Webhooks are not called by this server: refused, not ignored.
        assert http.post("/runs/crons", json={"assistant_id": "progress", "schedule": "* * * * *",
                                              "webhook": "http://127.0.0.1:9/hook"}).status_code == 422
        assert http.post(f"/threads/{tid}/runs", json={"assistant_id": "progress", "input": {"steps": 1},
                                                      "webhook": "http://127.0.0.1:9/hook"}).status_code == 422
        # Deleting its assistant deletes a cron.
        assistant = http.post("/assistants", json={"graph_id": "progress"}).json()
        owned = http.post("/runs/crons", json={"assistant_id": assistant["assistant_id"], "schedule": "0 0 1 1 *"}).json()
        assert http.delete(f"/assistants/{assistant['assistant_id']}").status_code == 204
        assert http.get(f"/runs/crons/{owned['cron_id']}").status_code == 404
        # Deleting the thread deletes its crons.
        assert http.delete(f"/threads/{tid}").status_code == 204
        assert http.get(f"/runs/crons/{made['cron_id']}").status_code == 404


@pytest.mark.skipif(not (database_under_test() or "").startswith("postgres"), reason="several servers share PostgreSQL")
def test_two_servers_fire_each_occurrence_once(server_factory):
    database = server_factory.new_database()
    one = server_factory("--langgraph-config", str(GRAPHS), database=database)
    server_factory("--langgraph-config", str(GRAPHS), database=database)

    async def go():
        lg = client(one)
        tid = (await lg.threads.create())["thread_id"]
        cron = await lg.crons.create_for_thread(tid, "progress", schedule="* * * * * */2", input={"steps": 1, "delay": 0})
        await asyncio.sleep(9)
        await lg.crons.delete(cron["cron_id"])
        await asyncio.sleep(1.5)
        runs = await lg.runs.list(tid, limit=100)
        # Every 2 s for 9 s: 4 or 5 occurrences; twice that if both servers fired each.
        assert 4 <= len(runs) <= 5, [r["created_at"] for r in runs]
        assert len({r["created_at"][:19] for r in runs}) == len(runs)  # never two runs in the same second

    run(go())
