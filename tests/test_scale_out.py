"""Several processes over one PostgreSQL and one Redis: API replicas (`serve --no-executor`)
that execute nothing, `threadloom worker`s that execute, and what a client sees through
any replica — streams, joins, polls, cancels — and when a process or Redis dies.

Each test gets its own database and its own `redis-server` process (real Redis, on a free
loopback port, so a test can stop and restart it). The model is the scripted upstream
(tests/scripted_upstream.py), a test double for the LLM.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from conftest import free_port, start_server, stop, test_database_url as database_under_test
from langgraph_support import client as lg_client, slow_reply, wait_status
from run_checks import (
    BackgroundStream,
    create_assistant, create_thread, names, post_stream, start_run, text_of, thread_messages, wait_for_assistant_message,
    wait_run,
)

pytestmark = [
    pytest.mark.skipif(not (database_under_test() or "").startswith("postgres"), reason="API replicas and workers share PostgreSQL"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

HI = {"messages": [{"role": "user", "content": "hi"}]}


class RedisProcess:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Cluster:
    def __init__(self, server_factory, upstream, tmp: Path):
        self.tmp = tmp
        self.upstream = upstream
        self.database = server_factory.new_database()
        self.redis = RedisProcess(tmp)
        self.redis.start()
        self.procs: list[subprocess.Popen] = []

    def api(self, *extra: str):
        server = start_server(self.tmp, self.database, "--upstream", self.upstream.url, "--redis", self.redis.url,
                              "--no-executor", *extra)
        self.procs.append(server.proc)
        return server

    def worker(self) -> subprocess.Popen:
        log_path = self.tmp / f"worker-{len(self.procs)}.log"
        cmd = [sys.executable, "-m", "threadloom.cli", "worker", "--database", self.database, "--redis", self.redis.url,
               "--upstream", self.upstream.url]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp, env=dict(os.environ))
        proc.log_path = log_path
        deadline = time.monotonic() + 60
        while b"is taking runs" not in log_path.read_bytes():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            stop(proc)
        self.redis.kill()


@pytest.fixture
def cluster(server_factory, upstream, tmp_path):
    c = Cluster(server_factory, upstream, tmp_path)
    yield c
    c.close()


def _client(server) -> httpx.Client:
    return httpx.Client(base_url=server.v1, timeout=30)


def test_a_run_queued_on_one_replica_is_executed_by_a_worker_and_seen_through_another(cluster, upstream):
    a, b = cluster.api(), cluster.api()
    cluster.worker()
    upstream.script(slow_reply("one two three four five six", delay=0.05))
    with _client(a) as ha, _client(b) as hb:
        assistant = create_assistant(ha)
        thread = create_thread(ha, "count")
        events = post_stream(ha, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
        # The same frames a single server sends (post_stream checks each against the spec).
        assert names(events)[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
        assert names(events)[-2:] == ["thread.run.completed", "done"]
        streamed = "".join(e.data["delta"]["content"][0]["text"]["value"] for e in events if e.name == "thread.message.delta")
        assert streamed == "one two three four five six"
        run_id = events[0].data["id"]
        assert wait_run(hb, thread["id"], run_id)["status"] == "completed"
        assert text_of(thread_messages(hb, thread["id"])[-1]) == streamed


def test_tool_outputs_submitted_through_another_replica_continue_the_run(cluster, upstream):
    a, b = cluster.api(), cluster.api()
    cluster.worker()
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}, {"text": "Oslo: 3C."})
    with _client(a) as ha, _client(b) as hb:
        assistant = create_assistant(ha, tools=[weather])
        thread = create_thread(ha, "weather?")
        run = start_run(ha, thread["id"], assistant_id=assistant["id"])
        waiting = wait_run(hb, thread["id"], run["id"])
        (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
        events = post_stream(hb, f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
                             {"tool_outputs": [{"tool_call_id": call["id"], "output": "3C"}], "stream": True})
        assert names(events)[0] == "thread.run.step.completed" and names(events)[-2:] == ["thread.run.completed", "done"]
        assert text_of(thread_messages(ha, thread["id"])[-1]) == "Oslo: 3C."


def test_langgraph_join_stream_on_another_replica_and_resume_elsewhere_when_it_dies(cluster, upstream):
    a, b = cluster.api(), cluster.api()
    cluster.worker()
    upstream.script(slow_reply("alpha beta gamma delta", delay=0.1))

    async def main():
        la, lb = lg_client(a), lg_client(b)
        thread = await la.threads.create()
        created = await la.runs.create(thread["thread_id"], "agent", input=HI, stream_mode=["messages-tuple", "updates"],
                                       stream_resumable=True)
        stream = lb.runs.join_stream(thread["thread_id"], created["run_id"])
        first = []
        async for part in stream:
            first.append(part)
            if len(first) == 3:
                break
        b.proc.kill()  # B dies mid-stream
        b.proc.wait()
        try:
            await stream.aclose()
        except Exception:
            pass
        # The client resumes on A after the last event it saw.
        rest = [p async for p in la.runs.join_stream(thread["thread_id"], created["run_id"], last_event_id=first[-1].id)]
        full = [p async for p in la.runs.join_stream(thread["thread_id"], created["run_id"])]
        joined = await la.runs.join(thread["thread_id"], created["run_id"])
        return first, rest, full, joined

    first, rest, full, joined = asyncio.run(main())
    assert [p.event for p in first] == ["metadata", "messages", "messages"]
    assert [(p.event, p.id) for p in first + rest] == [(p.event, p.id) for p in full]
    assert "".join(p.data[0]["content"] for p in full if p.event == "messages") == "alpha beta gamma delta"
    assert joined["messages"][-1]["content"] == "alpha beta gamma delta"


def test_a_cancel_through_any_replica_stops_the_run_on_its_worker(cluster, upstream):
    a, b = cluster.api(), cluster.api()
    cluster.worker()
    upstream.script({"text": "word " * 400, "chunk_size": 5, "delay": 0.1})
    with _client(a) as ha, _client(b) as hb:
        assistant = create_assistant(ha)
        thread = create_thread(ha, "talk")
        stream = BackgroundStream(ha, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
        message = wait_for_assistant_message(hb, thread["id"])
        assert hb.post(f"/threads/{thread['id']}/runs/{message['run_id']}/cancel").json()["status"] == "cancelling"
        ended = wait_run(hb, thread["id"], message["run_id"], until={"cancelled"}, timeout=5)
        assert ended["cancelled_at"] is not None
        stream.wait(10)
        assert names(stream.events)[-2:] == ["thread.run.cancelled", "done"]
        final = thread_messages(ha, thread["id"])[-1]
        assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "run_cancelled"}
        streamed = "".join(e.data["delta"]["content"][0]["text"]["value"] for e in stream.events if e.name == "thread.message.delta")
        assert text_of(final) == streamed
        # The model call stopped: the worker asked for nothing more and the thread is free.
        upstream.script({"text": "next"})
        again = start_run(hb, thread["id"], assistant_id=assistant["id"])
        assert wait_run(ha, thread["id"], again["id"])["status"] == "completed"


def test_runs_queued_while_no_worker_runs_start_when_one_does(cluster, upstream):
    a = cluster.api()
    upstream.default({"text": "done"})
    with _client(a) as ha:
        assistant = create_assistant(ha)
        runs = []
        for i in range(5):
            thread = create_thread(ha, f"q{i}")
            runs.append((thread["id"], start_run(ha, thread["id"], assistant_id=assistant["id"])["id"]))
        time.sleep(0.5)
        assert {ha.get(f"/threads/{t}/runs/{r}").json()["status"] for t, r in runs} == {"queued"}
        cluster.worker()
        for t, r in runs:
            assert wait_run(ha, t, r, timeout=10)["status"] == "completed"


def test_a_worker_killed_mid_run_fails_it_and_every_stream_ends(cluster, upstream):
    a = cluster.api()
    doomed = cluster.worker()
    upstream.script({"text": "word " * 400, "chunk_size": 5, "delay": 0.1})
    with _client(a) as ha:
        assistant = create_assistant(ha)
        thread = create_thread(ha, "talk")
        stream = BackgroundStream(ha, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
        message = wait_for_assistant_message(ha, thread["id"])
        time.sleep(1.5)  # past a text flush: what the client saw is stored
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        cluster.worker()  # a survivor; the API replica would end the run alone as well
        stream.wait(30)
        assert stream.events is not None, "the stream did not end after its worker died"
        assert names(stream.events)[-2:] == ["thread.run.failed", "done"]
        ended = wait_run(ha, thread["id"], message["run_id"])
        assert ended["status"] == "failed" and ended["last_error"]["code"] == "server_error"
        final = thread_messages(ha, thread["id"])[-1]
        assert final["status"] == "incomplete" and text_of(final).startswith("word word")
        upstream.script({"text": "again"})
        again = start_run(ha, thread["id"], assistant_id=assistant["id"])
        assert wait_run(ha, thread["id"], again["id"])["status"] == "completed"


def test_runs_accepted_by_a_killed_server_are_finished_by_a_survivor(cluster, server_factory, upstream):
    """Two plain `serve` processes (executors, no Redis) on one database: runs that the
    killed one had accepted, started or not, end on the survivor within seconds."""
    first = server_factory("--upstream", upstream.url, database=cluster.database)
    survivor = server_factory("--upstream", upstream.url, database=cluster.database)
    upstream.default({"text": "slow " * 50, "chunk_size": 5, "delay": 0.2})
    with _client(first) as h1, _client(survivor) as h2:
        assistant = create_assistant(h1)
        runs = []
        for i in range(10):
            thread = create_thread(h1, f"t{i}")
            runs.append((thread["id"], start_run(h1, thread["id"], assistant_id=assistant["id"])["id"]))
        first.proc.kill()
        first.proc.wait()
        for t, r in runs:
            assert wait_run(h2, t, r, timeout=30)["status"] in ("completed", "failed")
        upstream.default({"text": "fine"})
        t, _ = runs[0]
        again = start_run(h2, t, assistant_id=assistant["id"])
        assert wait_run(h2, t, again["id"])["status"] == "completed"


def test_streams_and_new_runs_survive_a_redis_restart(cluster, upstream):
    a = cluster.api()
    cluster.worker()
    upstream.script({"text": "word " * 40, "chunk_size": 5, "delay": 0.1})
    with _client(a) as ha:
        assistant = create_assistant(ha)
        thread = create_thread(ha, "talk")
        stream = BackgroundStream(ha, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
        message = wait_for_assistant_message(ha, thread["id"])
        cluster.redis.kill()
        # The run goes on on the worker (the store is the truth); the stream ends with
        # the run's final state read from the store.
        assert wait_run(ha, thread["id"], message["run_id"], timeout=30)["status"] == "completed"
        stream.wait(30)
        assert stream.events is not None, "the stream hung when Redis went away"
        assert names(stream.events)[-2:] == ["thread.run.completed", "done"]
        cluster.redis.start()
        upstream.script({"text": "back"})
        deadline = time.monotonic() + 20
        while True:  # the worker resubscribes; its sweep takes what was queued meanwhile
            events = post_stream(ha, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
            if names(events)[-2:] == ["thread.run.completed", "done"]:
                break
            assert time.monotonic() < deadline
        assert text_of(thread_messages(ha, thread["id"])[-1]) == "back"


class PrivatePostgres:
    """A PostgreSQL of the test's own (initdb in a scratch folder, run as the postgres
    user), so the test can restart it without touching the one the suite shares."""

    def __init__(self):
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="threadloom-pg-"))
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "--auth=trust", "-U", "postgres")
        self.start()

    def _as_postgres(self, *cmd: str, check: bool = True) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=check, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.skipif(not Path("/usr/lib/postgresql").is_dir() or shutil.which("runuser") is None or os.geteuid() != 0,
                    reason="starts a PostgreSQL of its own (as root, through runuser)")
def test_processes_reconnect_after_postgresql_restarts(tmp_path, upstream):
    pg = PrivatePostgres()
    redis = RedisProcess(tmp_path)
    redis.start()
    procs = []
    try:
        api = start_server(tmp_path, pg.url, "--upstream", upstream.url, "--redis", redis.url, "--no-executor")
        procs.append(api.proc)
        cluster = Cluster.__new__(Cluster)
        cluster.tmp, cluster.upstream, cluster.database, cluster.redis, cluster.procs = tmp_path, upstream, pg.url, redis, procs
        worker = cluster.worker()
        upstream.default({"text": "fine"})
        with _client(api) as h:
            assistant = create_assistant(h)
            thread = create_thread(h, "before")
            assert wait_run(h, thread["id"], start_run(h, thread["id"], assistant_id=assistant["id"])["id"])["status"] == "completed"
            pg.stop()
            down = h.get(f"/threads/{thread['id']}")
            assert down.status_code == 503 and down.json()["error"]["code"] == "database_unavailable", api.log()[-4000:]
            pg.start()
            statuses = []
            deadline = time.monotonic() + 20
            while True:
                response = h.post("/threads", json={"messages": [{"role": "user", "content": "after"}]})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    break
                assert response.status_code == 503 and time.monotonic() < deadline, api.log()[-4000:]
                time.sleep(0.2)
            again = response.json()
            run = start_run(h, again["id"], assistant_id=assistant["id"])
            assert wait_run(h, again["id"], run["id"], timeout=20)["status"] == "completed"
        assert api.proc.poll() is None and worker.poll() is None
        assert "Traceback" not in api.log(), api.log()[-3000:]
    finally:
        for proc in procs:
            stop(proc)
        redis.kill()
        pg.close()


def test_a_run_enqueued_on_a_replica_that_dies_still_starts(cluster, upstream):
    """LangGraph's multitask `enqueue`: the second run waits for the first. The replica
    that took both dies while the first runs on the worker; the second still runs."""
    a, b = cluster.api(), cluster.api()
    cluster.worker()
    upstream.script(slow_reply("first answer here", delay=0.3), {"text": "second answer"})

    async def main():
        la, lb = lg_client(a), lg_client(b)
        thread = await la.threads.create()
        tid = thread["thread_id"]
        first = await la.runs.create(tid, "agent", input=HI)
        second = await la.runs.create(tid, "agent", input={"messages": [{"role": "user", "content": "again"}]},
                                      multitask_strategy="enqueue")
        a.proc.kill()
        a.proc.wait()
        # Only B's own sweep can start it: nothing asks B's LangGraph door until it ran
        # (the thread is read through B's OpenAI door, the same store).
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=b.v1, headers={"OpenAI-Beta": "assistants=v2"}) as hb:
            while True:
                listed = (await hb.get(f"/threads/{tid}/messages", params={"order": "desc", "limit": 1})).json()["data"]
                if listed and text_of(listed[0]) == "second answer" and listed[0]["status"] == "completed":
                    break
                assert time.monotonic() < deadline, "the enqueued run never started"
                await asyncio.sleep(0.2)
        done = await wait_status(lb, tid, second["run_id"], "success", timeout=30)
        state = await lb.threads.get_state(tid)
        return first, done, state

    first, done, state = asyncio.run(main())
    assert done["status"] == "success"
    assert [m["content"] for m in state["values"]["messages"]] == ["hi", "first answer here", "again", "second answer"]


@pytest.mark.skipif(__import__("threadloom.sandbox", fromlist=["sandbox_problem"]).sandbox_problem() is not None,
                    reason="needs the code_interpreter sandbox")
def test_files_a_worker_writes_belong_to_the_runs_project(cluster, upstream):
    """The worker has no request to take the project from: the run carries it."""
    a = cluster.api("--api-key", "sk-alpha-key-1:alpha", "--api-key", "sk-beta-key-22:beta")
    cluster.worker()
    code = "open('/mnt/data/out.txt', 'w').write('from the worker')\nprint('written')"
    upstream.script({"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]},
                    {"text": "Here: sandbox:/mnt/data/out.txt"})
    alpha = {"Authorization": "Bearer sk-alpha-key-1", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=a.v1, timeout=30, headers=alpha) as h:
        assistant = create_assistant(h, tools=[{"type": "code_interpreter"}])
        thread = create_thread(h, "write a file")
        run = wait_run(h, thread["id"], start_run(h, thread["id"], assistant_id=assistant["id"])["id"])
        assert run["status"] == "completed", run["last_error"]
        (annotation,) = thread_messages(h, thread["id"])[-1]["content"][0]["text"]["annotations"]
        file_id = annotation["file_path"]["file_id"]
        assert h.get(f"/files/{file_id}/content").text == "from the worker"
    beta = {"Authorization": "Bearer sk-beta-key-22", "OpenAI-Beta": "assistants=v2"}
    assert httpx.get(f"{a.v1}/files/{file_id}", headers=beta).status_code == 404
