"""code_interpreter in runs: the model's code runs in the thread's sandboxed session and the
run goes on without requires_action; steps show input, logs and images; files the code
writes become downloadable files. The model is the scripted upstream (a test double
standing in for the LLM: it sends the code a model would write); the sandbox is real."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from openai import AssistantEventHandler

from openapi_schemas import assert_schema

pytestmark = pytest.mark.skipif(
    __import__("threadloom.sandbox", fromlist=["sandbox_problem"]).sandbox_problem() is not None,
    reason="no sandbox on this host (bubblewrap): code_interpreter is refused here, see test_refused_without_a_sandbox",
)


def code_call(code: str) -> dict:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]}


def steps_of(http, thread_id, run_id):
    data = http.get(f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc"}).json()["data"]
    for step in data:
        assert_schema(step, "RunStepObject")
    return data


def logs_of(step) -> str:
    call = step["step_details"]["tool_calls"][0]
    return "".join(o["logs"] for o in call["code_interpreter"]["outputs"] if o["type"] == "logs")


@pytest.fixture(scope="module")
def coder(server):
    with httpx.Client(base_url=server.v1, timeout=60) as http:
        return http.post("/assistants", json={"model": "gpt-4o", "tools": [{"type": "code_interpreter"}]}).json()["id"]


def run_code(client, upstream, assistant_id, thread_id, *replies, **options):
    upstream.script(*replies)
    return client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=50, **options)


def test_code_runs_and_the_session_keeps_its_state(client, http, upstream, coder):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is 123456 x 789?"}])
    run = run_code(client, upstream, coder, thread.id, code_call("x = 123456 * 789\nprint(x)"), {"text": "It is 97406784."})
    assert run.status == "completed", run.last_error
    first = upstream.requests()[-2]
    assert "code_interpreter" in [t["function"]["name"] for t in first["tools"]]
    assert "97406784" in upstream.requests()[-1]["messages"][-1]["content"]
    step = steps_of(http, thread.id, run.id)[0]
    assert step["status"] == "completed"
    call = step["step_details"]["tool_calls"][0]
    assert call["type"] == "code_interpreter" and call["code_interpreter"]["input"] == "x = 123456 * 789\nprint(x)"
    assert logs_of(step).strip() == "97406784"
    # The next run on the thread sees the same session.
    run = run_code(client, upstream, coder, thread.id, code_call("print(x + 1)"), {"text": "ok"})
    assert logs_of(steps_of(http, thread.id, run.id)[0]).strip() == "97406785"


def test_files_in_and_out_plots_and_annotations(client, http, upstream):
    csv = b"month,revenue\njan,100\nfeb,250\nmar,50\n"
    f = client.files.create(file=("sales.csv", io.BytesIO(csv)), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}],
                                              tool_resources={"code_interpreter": {"file_ids": [f.id]}})
    code = (
        "import pandas as pd\nimport matplotlib.pyplot as plt\n"
        "df = pd.read_csv('/mnt/data/sales.csv')\nprint('total', df.revenue.sum())\n"
        "df.to_csv('/mnt/data/summary.csv', index=False)\n"
        "plt.plot(df.month, df.revenue)\nplt.show()\n"
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Plot revenue and give me the total"}])
    run = run_code(client, upstream, assistant.id, thread.id, code_call(code),
                   {"text": "Total 400. Download it: sandbox:/mnt/data/summary.csv"})
    assert run.status == "completed", run.last_error
    step = steps_of(http, thread.id, run.id)[0]
    outputs = step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"]
    assert "total 400" in logs_of(step)
    images = [o["image"]["file_id"] for o in outputs if o["type"] == "image"]
    assert len(images) == 1
    assert client.files.content(images[0]).read().startswith(b"\x89PNG")
    assert client.files.retrieve(images[0]).purpose == "assistants_output"

    message = http.get(f"/threads/{thread.id}/messages", params={"limit": 1}).json()["data"][0]
    assert_schema(message, "MessageObject")
    text = message["content"][0]["text"]
    (annotation,) = text["annotations"]
    assert annotation["type"] == "file_path" and annotation["text"] == "sandbox:/mnt/data/summary.csv"
    assert text["value"][annotation["start_index"]:annotation["end_index"]] == annotation["text"]
    written = annotation["file_path"]["file_id"]
    assert client.files.content(written).read().decode().startswith("month,revenue")
    assert [p["type"] for p in message["content"]] == ["text", "image_file"]
    assert message["content"][1]["image_file"]["file_id"] == images[0]


def test_the_stream_shows_input_then_outputs(client, upstream, coder):
    upstream.script(code_call("print('streamed')"), {"text": "done"})
    seen = []

    class Handler(AssistantEventHandler):
        def on_tool_call_delta(self, delta, snapshot):
            if delta.type == "code_interpreter":
                if delta.code_interpreter.input:
                    seen.append(("input", delta.code_interpreter.input))
                for output in delta.code_interpreter.outputs or []:
                    seen.append(("output", getattr(output, "logs", None)))

    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=coder, event_handler=Handler()) as stream:
        stream.until_done()
    assert seen[0] == ("input", "print('streamed')")
    assert seen[-1][0] == "output" and "streamed" in seen[-1][1]


@pytest.mark.parametrize("attack, check", [
    ("print(open('/etc/passwd').read())", lambda logs: "postgres" not in logs),
    ("import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', 5432)); print('CONNECTED')\nexcept OSError as e:\n    print('refused', e)",
     lambda logs: "CONNECTED" not in logs),
    ("import os\nprint(dict(os.environ))", lambda logs: "/work" not in logs and "THREADLOOM" not in logs),
    ("import os\ntry:\n    os.kill({server_pid}, 9); print('KILLED')\nexcept OSError as e:\n    print('no', e)", lambda logs: "KILLED" not in logs),
    ("import os\nos.kill(os.getpid(), 9)", lambda logs: True),
    # A fork bomb, bounded by the test itself in case the limit failed: the process limit stops it.
    ("import os, time\nn = 0\nfor i in range(300):\n    try:\n        pid = os.fork()\n    except OSError as e:\n        print('STOPPED', n); break\n"
     "    if pid == 0:\n        time.sleep(1); os._exit(0)\n    n += 1\nelse:\n    print('FORKED ALL', n)", lambda logs: "STOPPED" in logs),
    ("x = bytearray(8 * 1024 ** 3)\nprint('ALLOC' + 'ATED')", lambda logs: "MemoryError" in logs and "ALLOCATED" not in logs),
    ("import os\nf = open('/mnt/data/huge', 'wb')\ntry:\n    for _ in range(10 * 1024):\n        f.write(b'0' * 1024 * 1024)\n"
     "except OSError as e:\n    print('STOPPED', e)\nf.close()\nprint(os.path.getsize('/mnt/data/huge'))\nos.remove('/mnt/data/huge')",
     lambda logs: "STOPPED" in logs and "File too large" in logs),
])
def test_attacks_through_a_run(client, http, upstream, coder, server, attack, check):
    code = attack.replace("{server_pid}", str(server.proc.pid))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "try"}])
    run = run_code(client, upstream, coder, thread.id, code_call(code), {"text": "tried"})
    assert run.status == "completed", run.last_error
    assert check(logs_of(steps_of(http, thread.id, run.id)[0]))
    assert server.proc.poll() is None
    # The database file is not there to read either.
    db_path = server.database.split("///", 1)[-1] if server.database.startswith("sqlite") else "/etc/hostname"
    run = run_code(client, upstream, coder, thread.id,
                   code_call(f"import os\nprint('EXISTS' if os.path.exists({db_path!r}) else 'absent')"), {"text": "ok"})
    assert "absent" in logs_of(steps_of(http, thread.id, run.id)[0])


def test_a_runaway_loop_times_out_and_the_session_recovers(server_factory, upstream):
    from openai import OpenAI

    quick = server_factory("--upstream", upstream.url, "--code-timeout", "2")
    with OpenAI(base_url=quick.v1, api_key="k", max_retries=0, timeout=60) as client, httpx.Client(base_url=quick.v1, timeout=60) as http:
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "loop"}])
        started = time.monotonic()
        run = run_code(client, upstream, assistant.id, thread.id, code_call("while True:\n    pass"), {"text": "it timed out"})
        assert run.status == "completed" and time.monotonic() - started < 20
        assert "timed out" in logs_of(steps_of(http, thread.id, run.id)[0])
        run = run_code(client, upstream, assistant.id, thread.id, code_call("print(2 + 2)"), {"text": "4"})
        assert logs_of(steps_of(http, thread.id, run.id)[0]).strip() == "4"


def test_cancel_stops_the_code(client, http, upstream, coder):
    upstream.script(code_call("import time\ntime.sleep(30)\nprint('finished')"), {"text": "late"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "wait"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=coder)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        steps = steps_of(http, thread.id, run.id)
        if steps:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
    run = client.beta.threads.runs.poll(thread_id=thread.id, run_id=run.id, poll_interval_ms=50)
    assert run.status == "cancelled"
    step = steps_of(http, thread.id, run.id)[0]
    assert step["status"] == "cancelled"
    upstream.reset()  # the cancelled run never asked for its second reply
    run = run_code(client, upstream, coder, thread.id, code_call("print('again')"), {"text": "ok"})
    assert logs_of(steps_of(http, thread.id, run.id)[0]).strip() == "again"
