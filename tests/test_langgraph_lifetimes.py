"""How long LangGraph threads and store items live: a thread's `ttl` (threads.create and
threads.update, or langgraph.json's checkpointer.ttl), the store's default TTL
(store.ttl), and what langgraph.json may ask that this server refuses or ignores. Driven
by langgraph-sdk against server processes serving tests/graphs/progress.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from langgraph_support import client, run

PROGRESS = str(Path(__file__).parent / "graphs" / "progress.py")


def _config(tmp_path: Path, **options) -> Path:
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"progress": f"{PROGRESS}:graph"}, **options}))
    return path


async def _gone(lg, thread_id: str, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await lg.threads.get(thread_id)
        except NotFoundError:
            return True
        await asyncio.sleep(0.2)
    return False


def test_threads_live_as_long_as_their_ttl(tmp_path, server_factory):
    # Threads made without a TTL get the config's (3 s); the sweep looks every 0.6 s.
    config = _config(tmp_path, checkpointer={"ttl": {"strategy": "delete", "default_ttl": 0.05,
                                                      "sweep_interval_minutes": 0.01}})
    served = server_factory("--langgraph-config", str(config))

    async def go():
        lg = client(served)
        by_default = (await lg.threads.create())["thread_id"]
        kept = (await lg.threads.create(ttl=600))["thread_id"]
        shortened = (await lg.threads.create(ttl={"ttl": 600, "strategy": "delete"}))["thread_id"]
        await lg.threads.update(shortened, metadata={"n": 1}, ttl=0.02)
        await lg.runs.wait(by_default, "progress", input={"steps": 1})
        made_by_a_run = (await lg.runs.create(None, "progress", input={"steps": 1}))["thread_id"]

        assert await _gone(lg, by_default) and await _gone(lg, shortened)
        assert (await lg.threads.get(kept))["thread_id"] == kept
        # A stateless run's thread is deleted when the run ends, TTL or not.
        assert await _gone(lg, made_by_a_run)

    run(go())


def test_a_keep_latest_ttl_prunes_the_history_and_keeps_the_thread(tmp_path, server_factory):
    config = _config(tmp_path, checkpointer={"ttl": {"sweep_interval_minutes": 0.01}})
    served = server_factory("--langgraph-config", str(config))

    async def go():
        lg = client(served)
        tid = (await lg.threads.create(ttl={"ttl": 600, "strategy": "keep_latest"}))["thread_id"]
        await lg.runs.wait(tid, "progress", input={"steps": 1})
        await lg.runs.wait(tid, "progress", input={"steps": 2})
        latest = await lg.threads.get_state(tid)
        assert len(await lg.threads.get_history(tid, limit=100)) > 1
        await lg.threads.update(tid, metadata={}, ttl={"ttl": 0.02, "strategy": "keep_latest"})
        deadline = time.monotonic() + 20
        while len(history := await lg.threads.get_history(tid, limit=100)) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert [h["checkpoint_id"] for h in history] == [latest["checkpoint_id"]]
        assert (await lg.threads.get_state(tid))["values"] == {"steps": 2, "done": 2}

    run(go())


def test_a_ttl_that_is_not_a_positive_number_of_minutes_is_refused(tmp_path, server_factory):
    served = server_factory("--langgraph-config", str(_config(tmp_path)))
    with httpx.Client(base_url=served.url) as http:
        for ttl in (-1, 0, "soon", {"ttl": 5, "strategy": "archive"}, {"strategy": "delete"}):
            assert http.post("/threads", json={"ttl": ttl}).status_code == 422, ttl
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        assert http.patch(f"/threads/{thread_id}", json={"ttl": -5}).status_code == 422


def test_store_items_take_the_configured_default_ttl(tmp_path, server_factory):
    config = _config(tmp_path, store={"ttl": {"default_ttl": 0.02, "refresh_on_read": False}})
    served = server_factory("--langgraph-config", str(config))

    async def go():
        lg = client(served)
        await lg.store.put_item(["memories"], "short", {"text": "gone soon"})
        await lg.store.put_item(["memories"], "long", {"text": "stays"}, ttl=600)
        assert (await lg.store.get_item(["memories"], "short"))["value"] == {"text": "gone soon"}
        await asyncio.sleep(2.5)
        assert await lg.store.get_item(["memories"], "short") is None
        assert (await lg.store.get_item(["memories"], "long"))["value"] == {"text": "stays"}

    run(go())


def _start(config: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "threadloom.cli", "serve", "--port", "0", "--database",
                           f"sqlite:///{tmp_path / 'db.sqlite'}", "--langgraph-config", str(config)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("options, said", [
    ({"auth": {"path": "./auth.py:auth"}}, "'auth': custom authentication is not supported; use --api-key"),
    ({"store": {"index": {"fields": "text"}}}, "store.index must be an object whose 'fields' is a list"),
    ({"checkpointer": {"ttl": {"default_ttl": -3}}}, "checkpointer.ttl.default_ttl must be a number of minutes"),
])
def test_what_langgraph_json_asks_and_this_server_does_not_do_stops_it(tmp_path, options, said):
    done = _start(_config(tmp_path, **options), tmp_path)
    assert done.returncode != 0
    assert said in done.stderr and "Traceback" not in done.stderr


def test_deployment_options_that_change_nothing_here_are_logged(tmp_path, server_factory):
    config = _config(tmp_path, python_version="3.12", http={"app": "./app.py:app"}, ui={"x": "./ui.tsx"})
    served = server_factory("--langgraph-config", str(config))
    assert httpx.get(served.url + "/ok").status_code == 200
    log = served.log_path.read_text()
    assert "langgraph.json: ignored (this server does not do it): http, ui" in log
    assert "python_version" not in log
