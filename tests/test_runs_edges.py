"""Edges of the run engine: a model's content filter, reasoning_effort on the wire, and a
thread deleted while its run streams. The model is the scripted upstream (a test double
for the LLM)."""

from __future__ import annotations

import threading
import time

from run_checks import check_event, create_assistant, create_thread, parse_sse, start_run, thread_messages, wait_run


def test_content_filter_completes_the_run_and_leaves_the_message_incomplete(http, upstream):
    upstream.script({"text": "I can't fin", "finish_reason": "content_filter"})
    assistant = create_assistant(http)
    thread = create_thread(http, "say something")
    run = wait_run(http, thread["id"], start_run(http, thread["id"], assistant_id=assistant["id"])["id"])
    assert run["status"] == "completed"
    message = thread_messages(http, thread["id"])[-1]
    assert message["role"] == "assistant"
    assert message["status"] == "incomplete"
    assert message["incomplete_details"] == {"reason": "content_filter"}
    assert message["content"][0]["text"]["value"] == "I can't fin"


def test_reasoning_effort_of_the_run_or_assistant_is_sent_to_the_model(http, upstream):
    assistant = create_assistant(http, reasoning_effort="low")
    thread = create_thread(http, "think")
    wait_run(http, thread["id"], start_run(http, thread["id"], assistant_id=assistant["id"])["id"])
    assert upstream.requests()[-1]["reasoning_effort"] == "low"
    wait_run(http, thread["id"], start_run(http, thread["id"], assistant_id=assistant["id"], reasoning_effort="high")["id"])
    assert upstream.requests()[-1]["reasoning_effort"] == "high"
    plain = create_assistant(http)
    wait_run(http, thread["id"], start_run(http, thread["id"], assistant_id=plain["id"])["id"])
    assert "reasoning_effort" not in upstream.requests()[-1]


def test_deleting_a_thread_mid_stream_ends_its_stream(http, upstream):
    upstream.script({"text": "slow " * 40, "chunk_size": 5, "delay": 0.1})
    assistant = create_assistant(http)
    thread = create_thread(http, "talk slowly")
    body = bytearray()

    def stream():
        with http.stream("POST", f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"], "stream": True}) as r:
            for chunk in r.iter_bytes():
                body.extend(chunk)

    reader = threading.Thread(target=stream)
    reader.start()
    deadline = time.monotonic() + 10
    while b"thread.message.delta" not in body and time.monotonic() < deadline:
        time.sleep(0.05)
    deleted = http.delete(f"/threads/{thread['id']}")
    assert deleted.json() == {"id": thread["id"], "object": "thread.deleted", "deleted": True}
    reader.join(10)
    assert not reader.is_alive(), "the stream of a run whose thread was deleted never ended"
    events, _ = parse_sse(bytes(body))
    assert [e.name for e in events][-2:] == ["thread.run.cancelled", "done"]
    check_event(events[-2].name, events[-2].data)
    assert http.get(f"/threads/{thread['id']}").status_code == 404
