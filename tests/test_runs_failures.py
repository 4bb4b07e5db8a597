"""Failures end runs, never leave them hanging: upstream errors (5xx, 429, connection
refused, malformed or dropped streams, timeouts) end the run `failed` with last_error;
cancel stops the model call; a run left waiting expires; a run whose server was killed is
failed by the next server on the database."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest

from conftest import free_port
from conftest import test_database_url as database_under_test
from openapi_schemas import assert_schema
from run_checks import (
    BackgroundStream,
    WEATHER_TOOL,
    create_assistant,
    create_thread,
    post_stream,
    run_steps,
    start_run,
    text_of,
    thread_messages,
    wait_for_assistant_message,
    wait_run,
)

pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")


class ChunkModel:
    """A hand-driven model server. POST .../slow/v1/chat/completions streams one short chunk
    every 0.1 s for a minute and records whether its client hung up before the end (what a
    cancelled run must do); POST .../odd/v1/chat/completions streams the deltas in `odd`
    (shapes the scripted upstream does not produce), then [DONE]."""

    CHUNKS = 600

    def __init__(self) -> None:
        self.hung_up = threading.Event()
        self.sent = 0
        self.odd: list[dict] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                return b"data: " + orjson.dumps(chunk) + b"\n\n"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                if self.path.startswith("/odd/"):
                    for delta in model.odd:
                        self.wfile.write(self._chunk(delta))
                    self.wfile.write(self._chunk({}, "tool_calls") + b"data: [DONE]\n\n")
                    return
                try:
                    for i in range(model.CHUNKS):
                        self.wfile.write(self._chunk({"content": f"w{i} "}))
                        self.wfile.flush()
                        model.sent += 1
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    model.hung_up.set()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def chunk_model():
    model = ChunkModel()
    yield model
    model.close()


@pytest.fixture(scope="module")
def failing_server(server_factory, upstream_process, chunk_model):
    """A server whose model calls time out after 1 s and whose runs expire after 4 s; model
    `refused` routes to a closed port, models `slow` and `odd` to ChunkModel, everything
    else to the scripted upstream."""
    closed_port = free_port()  # nothing listens there
    return server_factory(
        "--upstream", upstream_process.url, "--upstream-timeout", "1", "--run-ttl", "4",
        "--route", f"refused=openai_compat,url=http://127.0.0.1:{closed_port}/v1",
        "--route", f"slow=openai_compat,url={chunk_model.url}/slow/v1",
        "--route", f"odd=openai_compat,url={chunk_model.url}/odd/v1",
    )


@pytest.fixture
def fhttp(failing_server):
    with httpx.Client(base_url=failing_server.v1, timeout=30, headers={"OpenAI-Beta": "assistants=v2"}) as c:
        yield c


def _failed_run(http, model: str = "gpt-4o", **assistant_fields) -> tuple[dict, dict]:
    assistant = create_assistant(http, model=model, **assistant_fields)
    thread = create_thread(http, "hello")
    run = start_run(http, thread["id"], assistant_id=assistant["id"])
    ended = wait_run(http, thread["id"], run["id"])
    assert ended["status"] == "failed", ended
    assert ended["failed_at"] is not None and ended["completed_at"] is None and ended["expires_at"] is None
    assert ended["last_error"]["message"]
    assert ended["usage"] is not None
    # The thread is free again.
    assert http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "again"}).status_code == 200
    return ended, thread


def test_upstream_500_fails_the_run_with_server_error(http, upstream):
    upstream.script({"status": 500, "error": "model exploded"})
    run, _ = _failed_run(http)
    assert run["last_error"]["code"] == "server_error"
    assert "model exploded" in run["last_error"]["message"]


def test_upstream_429_fails_the_run_with_rate_limit_exceeded(http, upstream):
    # Retried three times first (test_upstream_retries.py); the fourth 429 fails the run.
    upstream.script(*[{"status": 429, "error": "slow down", "headers": {"retry-after-ms": "50"}}] * 4)
    run, _ = _failed_run(http)
    assert run["last_error"]["code"] == "rate_limit_exceeded"


def test_upstream_4xx_fails_the_run(http, upstream):
    upstream.script({"status": 400, "error": "context length exceeded"})
    run, _ = _failed_run(http)
    assert run["last_error"]["code"] == "server_error"


def test_connection_refused_fails_the_run(fhttp, upstream):
    run, _ = _failed_run(fhttp, model="refused")
    assert run["last_error"]["code"] == "server_error"


def test_a_malformed_chunk_fails_the_run_and_its_message(http, upstream):
    upstream.script({"text": "partial answer that breaks half way through", "chunk_size": 4, "malformed": True})
    run, thread = _failed_run(http)
    assert run["last_error"]["code"] == "server_error"
    message = thread_messages(http, thread["id"])[1]
    assert message["role"] == "assistant" and message["status"] == "incomplete"
    assert message["incomplete_details"] == {"reason": "run_failed"}
    assert 0 < len(text_of(message)) < len("partial answer that breaks half way through")
    (step,) = run_steps(http, thread["id"], run["id"])
    assert step["status"] == "failed" and step["failed_at"] is not None
    assert step["last_error"]["code"] == "server_error"


def test_a_dropped_connection_fails_the_run(http, upstream):
    upstream.script({"text": "this answer never finishes", "chunk_size": 3, "drop": 4})
    run, _ = _failed_run(http)
    assert run["last_error"]["code"] == "server_error"


def test_a_failure_in_the_middle_of_a_tool_call_fails_its_step(http, upstream):
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "a long city name"}}], "chunk_size": 2, "malformed": True})
    run, thread = _failed_run(http, tools=[WEATHER_TOOL])
    assert run["required_action"] is None
    (step,) = run_steps(http, thread["id"], run["id"])
    assert step["type"] == "tool_calls" and step["status"] == "failed" and step["last_error"]["code"] == "server_error"


def test_a_hanging_model_times_out_and_fails_the_run(fhttp, upstream):
    upstream.script({"hang": True})
    run, _ = _failed_run(fhttp)
    assert run["last_error"]["code"] == "server_error"
    assert "timed out" in run["last_error"]["message"]


def test_a_failed_run_streams_failed_then_done(http, upstream):
    upstream.script(*[{"status": 429, "error": "slow down", "headers": {"retry-after-ms": "50"}}] * 4)
    assistant = create_assistant(http)
    thread = create_thread(http, "hi")
    events = post_stream(http, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
    assert [e.name for e in events][-2:] == ["thread.run.failed", "done"]
    assert events[-2].data["last_error"]["code"] == "rate_limit_exceeded"


def test_cancel_during_a_slow_stream_stops_the_model_call(fhttp, chunk_model):
    assistant = create_assistant(fhttp, model="slow")
    thread = create_thread(fhttp, "talk for a minute")
    run = start_run(fhttp, thread["id"], assistant_id=assistant["id"])
    wait_for_assistant_message(fhttp, thread["id"])
    response = fhttp.post(f"/threads/{thread['id']}/runs/{run['id']}/cancel")
    assert assert_schema(response.json(), "RunObject")["status"] == "cancelling"
    ended = wait_run(fhttp, thread["id"], run["id"], until={"cancelled"})
    assert ended["cancelled_at"] is not None
    assert chunk_model.hung_up.wait(10), "the server kept reading the model after the cancel"
    assert chunk_model.sent < ChunkModel.CHUNKS
    message = thread_messages(fhttp, thread["id"])[-1]
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_cancelled"}


def test_a_tool_call_name_sent_after_its_first_chunk_is_streamed_once(fhttp, chunk_model):
    """Some servers send a call's id first and its name in a later chunk: the step deltas
    must still carry the name, once, so the SDK's snapshot reads `get_weather`."""
    chunk_model.odd = [
        {"tool_calls": [{"index": 0, "id": "up_1", "type": "function", "function": {"arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"name": "get_weather"}}]},
        {"tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
    ]
    assistant = create_assistant(fhttp, model="odd", tools=[WEATHER_TOOL])
    thread = create_thread(fhttp, "weather?")
    events = post_stream(fhttp, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
    entries = [entry for e in events if e.name == "thread.run.step.delta" for entry in e.data["delta"]["step_details"]["tool_calls"]]
    names = "".join(entry["function"].get("name", "") for entry in entries)
    arguments = "".join(entry["function"].get("arguments", "") for entry in entries)
    assert names == "get_weather" and arguments == '{"city":"Paris"}'
    assert [entry["id"] for entry in entries if "id" in entry] == [events[-2].data["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]]
    (call,) = events[-2].data["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}


@pytest.mark.skipif(not (database_under_test() or "").startswith("postgres"), reason="several servers share PostgreSQL")
def test_a_cancel_through_another_server_ends_the_stream_and_the_model_call(server_factory, upstream, chunk_model):
    """Two servers on one database: the run streams from A, the cancel goes to B."""
    database = server_factory.new_database()
    route = ("--upstream", upstream.url, "--route", f"slow=openai_compat,url={chunk_model.url}/slow/v1")
    a = server_factory(*route, database=database)
    b = server_factory(*route, database=database)
    chunk_model.hung_up.clear()
    with httpx.Client(base_url=a.v1, timeout=30) as ha, httpx.Client(base_url=b.v1, timeout=30) as hb:
        assistant = create_assistant(ha, model="slow")
        thread = create_thread(ha, "talk for a minute")
        stream = BackgroundStream(ha, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
        message = wait_for_assistant_message(hb, thread["id"])
        assert hb.post(f"/threads/{thread['id']}/runs/{message['run_id']}/cancel").status_code == 200
        stream.wait(20)
        assert stream.events is not None, "A's stream did not end after B cancelled the run"
        assert [e.name for e in stream.events][-2:] == ["thread.run.cancelled", "done"]
        assert chunk_model.hung_up.wait(10), "A kept reading the model after the cancel"
        for h in (ha, hb):
            assert wait_run(h, thread["id"], message["run_id"])["status"] == "cancelled"
        final = thread_messages(hb, thread["id"])[-1]
        assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "run_cancelled"}
        # The message keeps what A streamed of it.
        streamed = "".join(e.data["delta"]["content"][0]["text"]["value"] for e in stream.events if e.name == "thread.message.delta")
        assert streamed and text_of(final) == streamed


# -- expiry ------------------------------------------------------------------------


def test_a_run_waiting_for_tool_outputs_expires(fhttp, upstream):
    upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})
    assistant = create_assistant(fhttp, tools=[WEATHER_TOOL])
    thread = create_thread(fhttp, "weather?")
    run = start_run(fhttp, thread["id"], assistant_id=assistant["id"])
    assert run["expires_at"] == run["created_at"] + 4
    waiting = wait_run(fhttp, thread["id"], run["id"])
    assert waiting["status"] == "requires_action", waiting  # reached well within the 4 s (created_at is whole seconds)
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    ended = wait_run(fhttp, thread["id"], run["id"], until={"expired"})
    assert ended["required_action"] is None and ended["expires_at"] == run["expires_at"]
    assert ended["completed_at"] is None and ended["failed_at"] is None and ended["cancelled_at"] is None
    (step,) = run_steps(fhttp, thread["id"], run["id"])
    assert step["status"] == "expired" and step["expired_at"] is not None
    late = fhttp.post(f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
                      json={"tool_outputs": [{"tool_call_id": call["id"], "output": "too late"}]})
    assert late.status_code == 400
    assert late.json()["error"]["message"] == 'Runs in status "expired" do not accept tool outputs.'
    assert len(upstream.requests()) == 1
    assert fhttp.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "x"}).status_code == 200


def test_a_run_still_generating_at_expires_at_expires(fhttp, upstream):
    upstream.script({"text": "word " * 100, "chunk_size": 5, "delay": 0.2})
    assistant = create_assistant(fhttp)
    thread = create_thread(fhttp, "long answer please")
    events = post_stream(fhttp, f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})
    order = [e.name for e in events]
    assert order[-4:] == ["thread.message.incomplete", "thread.run.step.expired", "thread.run.expired", "done"]
    ended = events[-2].data
    assert fhttp.get(f"/threads/{thread['id']}/runs/{ended['id']}").json() == ended
    message = thread_messages(fhttp, thread["id"])[-1]
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_expired"}


# -- a killed server -------------------------------------------------------------------


def test_runs_of_a_killed_server_are_failed_or_resumed_by_the_next_one(server_factory, upstream):
    """Stands for a crash, an OOM kill or a power cut of the process executing a run: its
    executor is gone without a word and the database still says in_progress. The next
    server on that database (here started after the kill; equally a sibling already
    running) must end such a run `failed` within seconds, its open message and step with
    it, instead of leaving the thread locked by a run nobody executes. A run that was
    waiting for tool outputs held no executor: the next server takes the outputs and
    finishes it."""
    database = server_factory.new_database()
    first = server_factory("--upstream", upstream.url, database=database)
    with httpx.Client(base_url=first.v1, timeout=30) as h:
        assistant = create_assistant(h, tools=[WEATHER_TOOL])
        upstream.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Kyiv"}}]})
        waiting_thread = create_thread(h, "weather?")
        waiting = start_run(h, waiting_thread["id"], assistant_id=assistant["id"])
        (call,) = wait_run(h, waiting_thread["id"], waiting["id"])["required_action"]["submit_tool_outputs"]["tool_calls"]

        upstream.script({"text": "word " * 300, "chunk_size": 5, "delay": 0.1})
        thread = create_thread(h, "long answer please")
        run = start_run(h, thread["id"], assistant_id=assistant["id"])
        wait_for_assistant_message(h, thread["id"])
        first.proc.kill()  # SIGKILL: no shutdown handler runs
        first.proc.wait()

    second = server_factory("--upstream", upstream.url, database=database)
    with httpx.Client(base_url=second.v1, timeout=30) as h:
        ended = wait_run(h, thread["id"], run["id"], timeout=20)
        assert ended["status"] == "failed"
        assert ended["last_error"]["code"] == "server_error" and ended["failed_at"] is not None
        message = thread_messages(h, thread["id"])[-1]
        assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_failed"}
        (step,) = run_steps(h, thread["id"], run["id"])
        assert step["status"] == "failed"
        # The thread works again on the new server.
        upstream.script({"text": "back"})
        again = start_run(h, thread["id"], assistant_id=assistant["id"])
        assert wait_run(h, thread["id"], again["id"])["status"] == "completed"

        assert wait_run(h, waiting_thread["id"], waiting["id"])["status"] == "requires_action"
        upstream.script({"text": "Cold."})
        response = h.post(f"/threads/{waiting_thread['id']}/runs/{waiting['id']}/submit_tool_outputs",
                          json={"tool_outputs": [{"tool_call_id": call["id"], "output": "-5C"}]})
        assert response.status_code == 200
        assert wait_run(h, waiting_thread["id"], waiting["id"])["status"] == "completed"
        assert text_of(thread_messages(h, waiting_thread["id"])[-1]) == "Cold."
