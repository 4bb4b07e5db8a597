"""What a client was shown is kept: streamed text reaches the store within a second, a
killed server's runs keep it, and SIGTERM lets turns finish within the grace period,
then ends the rest cleanly. Real server processes on one database; the scripted upstream
stands in for a slow model."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from conftest import stop
from run_checks import parse_sse

SLOW = {"text": "word " * 200, "chunk_size": 5, "delay": 0.05}  # 200 deltas over ~10 s


def _stream_in_background(server, assistant_id: str, thread_id: str, received: list, done: threading.Event):
    def run():
        body = b""
        try:
            with httpx.Client(base_url=server.v1, timeout=60) as http:
                with http.stream("POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}) as r:
                    for chunk in r.iter_raw():
                        body += chunk
                        received.append(body)
        except httpx.HTTPError:
            pass
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _setup(http):
    assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": "talk"}]}).json()
    return assistant["id"], thread["id"]


def _streamed_text(raw: bytes) -> str:
    text = []
    for frame in raw.decode().split("\n\n"):
        if frame.startswith("event: thread.message.delta"):
            import orjson

            data = orjson.loads(frame.split("data: ", 1)[1])
            text.append(data["delta"]["content"][0]["text"].get("value", ""))
    return "".join(text)


def test_streamed_text_is_in_the_store_and_survives_a_kill(server_factory, upstream):
    database = server_factory.new_database()
    first = server_factory("--upstream", upstream.url, database=database)
    upstream.script(SLOW)
    with httpx.Client(base_url=first.v1, timeout=30) as http:
        assistant_id, thread_id = _setup(http)
        received, done = [], threading.Event()
        _stream_in_background(first, assistant_id, thread_id, received, done)
        time.sleep(2.5)
        stored = http.get(f"/threads/{thread_id}/messages", params={"limit": 1}).json()["data"][0]
        assert stored["status"] == "in_progress"
        stored_text = stored["content"][0]["text"]["value"]
        shown = _streamed_text(received[-1])
        assert stored_text and shown.startswith(stored_text), (stored_text, shown)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    shown = _streamed_text(received[-1])

    second = server_factory("--upstream", upstream.url, database=database)
    with httpx.Client(base_url=second.v1, timeout=30) as http:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = http.get(f"/threads/{thread_id}/runs", params={"limit": 1}).json()["data"][0]
            if run["status"] == "failed":
                break
            time.sleep(0.2)
        assert run["status"] == "failed" and run["last_error"]["code"] == "server_error"
        message = http.get(f"/threads/{thread_id}/messages", params={"limit": 1}).json()["data"][0]
        assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_failed"}
        kept = message["content"][0]["text"]["value"]
        # What the client saw, within the flush interval (one second, ~20 deltas here).
        assert kept and shown.startswith(kept) and len(shown) - len(kept) <= 25 * 5, (len(kept), len(shown))


def test_sigterm_lets_short_turns_finish_and_ends_long_ones_cleanly(server_factory, upstream):
    database = server_factory.new_database()
    server = server_factory("--upstream", upstream.url, "--shutdown-grace", "1.5", database=database)
    # One run finishes inside the grace period, two would take ~10 s.
    upstream.script({"text": "quick answer", "delay": 0.3, "chunk_size": 3}, SLOW, SLOW)
    streams = []
    with httpx.Client(base_url=server.v1, timeout=30) as http:
        for _ in range(3):
            assistant_id, thread_id = _setup(http)
            received, done = [], threading.Event()
            _stream_in_background(server, assistant_id, thread_id, received, done)
            streams.append((thread_id, received, done))
            time.sleep(0.2)
    time.sleep(0.8)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=20)
    took = time.monotonic() - started
    assert took < 8, took
    for _, _, done in streams:
        assert done.wait(5)
    finals = []
    for thread_id, received, _ in streams:
        events, _ = parse_sse(received[-1])  # complete frames, ending with done
        run_events = [e for e in events if e.name.startswith("thread.run.") and not e.name.startswith("thread.run.step")]
        finals.append(run_events[-1].name)
    assert finals[0] == "thread.run.completed"
    assert finals[1:] == ["thread.run.failed", "thread.run.failed"]
    log = server.log()
    assert "Traceback" not in log, log[-3000:]

    again = server_factory("--upstream", upstream.url, database=database)
    with httpx.Client(base_url=again.v1, timeout=30) as http:
        for thread_id, received, _ in streams[1:]:
            run = http.get(f"/threads/{thread_id}/runs", params={"limit": 1}).json()["data"][0]
            assert run["last_error"] == {"code": "server_error", "message": "The server shut down before the run finished."}
            message = http.get(f"/threads/{thread_id}/messages", params={"limit": 1}).json()["data"][0]
            assert message["status"] == "incomplete"
            assert message["content"][0]["text"]["value"] == _streamed_text(received[-1])
    stop(again.proc)
