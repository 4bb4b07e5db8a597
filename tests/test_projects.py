"""Projects: with `--api-key KEY:PROJECT`, a key sees only its project's objects, in both
doors: another project's assistants, threads (with their messages, runs and steps), files
and vector stores are not found, absent from lists and searches, and cannot be changed,
deleted or used. Keys of one project share everything."""

from __future__ import annotations

import io

import httpx
import pytest
from openai import OpenAI

from v1_checks import assert_error, create_store

K1, K2, K3 = "key-one-alpha", "key-two-beta", "key-three-alpha"


@pytest.fixture(scope="module")
def server(server_factory, upstream_process):
    return server_factory("--upstream", upstream_process.url, "--api-key", f"{K1}:alpha",
                          "--api-key", f"{K2}:beta", "--api-key", f"{K3}:alpha")


def sdk(server, key):
    return OpenAI(base_url=server.v1, api_key=key, max_retries=0, timeout=30)


def raw(server, key, root=False):
    return httpx.Client(base_url=server.url if root else server.v1, timeout=30,
                        headers={"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"})


@pytest.fixture(scope="module")
def alpha(server, upstream_process):
    """K1's objects: an assistant, a thread with a message and a finished run, a file in a
    vector store, and LangGraph assistant and thread."""
    upstream_process.reset()
    upstream_process.default({"text": "hello"})
    with sdk(server, K1) as c:
        f = c.files.create(file=("secret.md", io.BytesIO(b"The alpha launch code is ORCHID.")), purpose="assistants")
        store = create_store(c, name="alpha", file_ids=[f.id])
        assistant = c.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                             tool_resources={"file_search": {"vector_store_ids": [store.id]}})
        thread = c.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = c.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
        message = c.beta.threads.messages.list(thread.id).data[0]
        step = c.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data[0]
        batch = c.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=[f.id], poll_interval_ms=50)
    with raw(server, K1, root=True) as lg:
        lg_assistant = lg.post("/assistants", json={"graph_id": "agent", "name": "alpha-agent"}).json()
        lg_thread = lg.post("/threads", json={"metadata": {"owner": "alpha"}}).json()
    return {"file": f.id, "store": store.id, "assistant": assistant.id, "thread": thread.id, "run": run.id,
            "message": message.id, "step": step.id, "batch": batch.id,
            "lg_assistant": lg_assistant["assistant_id"], "lg_thread": lg_thread["thread_id"]}


OPENAI_ROUTES = [
    ("GET", "/assistants/{assistant}", None),
    ("POST", "/assistants/{assistant}", {"name": "stolen"}),
    ("DELETE", "/assistants/{assistant}", None),
    ("GET", "/threads/{thread}", None),
    ("POST", "/threads/{thread}", {"metadata": {"x": "y"}}),
    ("DELETE", "/threads/{thread}", None),
    ("GET", "/threads/{thread}/messages", None),
    ("POST", "/threads/{thread}/messages", {"role": "user", "content": "injected"}),
    ("GET", "/threads/{thread}/messages/{message}", None),
    ("POST", "/threads/{thread}/messages/{message}", {"metadata": {"x": "y"}}),
    ("DELETE", "/threads/{thread}/messages/{message}", None),
    ("GET", "/threads/{thread}/runs", None),
    ("POST", "/threads/{thread}/runs", {"assistant_id": "{assistant}"}),
    ("GET", "/threads/{thread}/runs/{run}", None),
    ("POST", "/threads/{thread}/runs/{run}", {"metadata": {"x": "y"}}),
    ("POST", "/threads/{thread}/runs/{run}/cancel", None),
    ("POST", "/threads/{thread}/runs/{run}/submit_tool_outputs", {"tool_outputs": []}),
    ("GET", "/threads/{thread}/runs/{run}/steps", None),
    ("GET", "/threads/{thread}/runs/{run}/steps/{step}", None),
    ("POST", "/threads/runs", {"assistant_id": "{assistant}"}),
    ("GET", "/files/{file}", None),
    ("GET", "/files/{file}/content", None),
    ("DELETE", "/files/{file}", None),
    ("POST", "/vector_stores", {"file_ids": ["{file}"]}),
    ("GET", "/vector_stores/{store}", None),
    ("POST", "/vector_stores/{store}", {"name": "stolen"}),
    ("DELETE", "/vector_stores/{store}", None),
    ("POST", "/vector_stores/{store}/search", {"query": "launch code"}),
    ("GET", "/vector_stores/{store}/files", None),
    ("POST", "/vector_stores/{store}/files", {"file_id": "{file}"}),
    ("GET", "/vector_stores/{store}/files/{file}", None),
    ("POST", "/vector_stores/{store}/files/{file}", {"attributes": {"x": "y"}}),
    ("GET", "/vector_stores/{store}/files/{file}/content", None),
    ("DELETE", "/vector_stores/{store}/files/{file}", None),
    ("POST", "/vector_stores/{store}/file_batches", {"file_ids": ["{file}"]}),
    ("GET", "/vector_stores/{store}/file_batches/{batch}", None),
    ("POST", "/vector_stores/{store}/file_batches/{batch}/cancel", None),
    ("GET", "/vector_stores/{store}/file_batches/{batch}/files", None),
    ("POST", "/assistants", {"model": "m", "tool_resources": {"file_search": {"vector_store_ids": ["{store}"]}}}),
    ("POST", "/threads", {"tool_resources": {"code_interpreter": {"file_ids": ["{file}"]}}}),
    ("POST", "/threads", {"messages": [{"role": "user", "content": "x", "attachments": [{"file_id": "{file}", "tools": [{"type": "file_search"}]}]}]}),
]


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("method, path, body", OPENAI_ROUTES)
def test_another_project_cannot_reach_it_through_v1(server, alpha, method, path, body):
    with raw(server, K2) as http:
        r = http.request(method, _fill(path, alpha), json=_fill(body, alpha))
        assert_error(r, 404)
    # And nothing changed: the owner still sees every object as it was.
    with sdk(server, K1) as c:
        assert c.beta.assistants.retrieve(alpha["assistant"]).name is None
        assert c.beta.threads.retrieve(alpha["thread"]).metadata == {}
        assert [m.id for m in c.beta.threads.messages.list(alpha["thread"])] == [alpha["message"], *[m.id for m in c.beta.threads.messages.list(alpha["thread"])][1:]]
        assert c.files.retrieve(alpha["file"]).id == alpha["file"]
        assert c.vector_stores.retrieve(alpha["store"]).name == "alpha"


def test_lists_show_only_the_own_project(server, alpha):
    with sdk(server, K2) as c:
        mine = c.beta.assistants.create(model="gpt-4o", name="beta's")
        listed = [a.id for a in c.beta.assistants.list()]
        # Only beta's own, beside the server's (a LangGraph graph's default assistant is everyone's).
        assert mine.id in listed and alpha["assistant"] not in listed
        assert all(a == mine.id or not a.startswith("asst_") for a in listed)
        assert alpha["file"] not in [f.id for f in c.files.list()]
        assert alpha["store"] not in [s.id for s in c.vector_stores.list()]
    with sdk(server, K3) as c:  # the same project as K1
        ids = [a.id for a in c.beta.assistants.list()]
        assert alpha["assistant"] in ids and mine.id not in ids
        assert c.files.retrieve(alpha["file"]).filename == "secret.md"
        hit = next(iter(c.vector_stores.search(alpha["store"], query="launch code")))
        assert "ORCHID" in hit.content[0].text


def test_the_langgraph_door_is_scoped_too(server, alpha):
    with raw(server, K2, root=True) as lg:
        for method, path in [
            ("GET", f"/threads/{alpha['lg_thread']}"), ("PATCH", f"/threads/{alpha['lg_thread']}"),
            ("DELETE", f"/threads/{alpha['lg_thread']}"), ("GET", f"/threads/{alpha['lg_thread']}/state"),
            ("POST", f"/threads/{alpha['lg_thread']}/history"), ("GET", f"/threads/{alpha['lg_thread']}/runs"),
            ("GET", f"/threads/{alpha['thread']}"),
            ("GET", f"/assistants/{alpha['lg_assistant']}"), ("PATCH", f"/assistants/{alpha['lg_assistant']}"),
            ("DELETE", f"/assistants/{alpha['lg_assistant']}"), ("GET", f"/assistants/{alpha['assistant']}"),
        ]:
            r = lg.request(method, path, json={} if method in ("PATCH", "POST") else None)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
        r = lg.post(f"/threads/{alpha['lg_thread']}/runs/wait", json={"assistant_id": "agent", "input": {"messages": []}})
        assert r.status_code == 404, r.text
        threads = lg.post("/threads/search", json={"limit": 100}).json()
        assert alpha["lg_thread"] not in [t["thread_id"] for t in threads]
        assistants = lg.post("/assistants/search", json={"limit": 100}).json()
        assert alpha["lg_assistant"] not in [a["assistant_id"] for a in assistants]
    with raw(server, K3, root=True) as lg:
        assert lg.get(f"/threads/{alpha['lg_thread']}").json()["metadata"]["owner"] == "alpha"


def test_a_key_alone_is_the_default_project(server_factory):
    plain = server_factory("--api-key", "only-key")
    with OpenAI(base_url=plain.v1, api_key="only-key", max_retries=0) as c:
        a = c.beta.assistants.create(model="m")
        assert c.beta.assistants.retrieve(a.id).id == a.id


def test_keys_from_a_file(server_factory, tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text('[[keys]]\nkey = "file-key-1"\nproject = "red"\n\n[[keys]]\nkey = "file-key-2"\nproject = "blue"\n')
    s = server_factory("--api-keys-file", str(keys))
    with OpenAI(base_url=s.v1, api_key="file-key-1", max_retries=0) as red, OpenAI(base_url=s.v1, api_key="file-key-2", max_retries=0) as blue:
        a = red.beta.assistants.create(model="m")
        with pytest.raises(Exception) as err:
            blue.beta.assistants.retrieve(a.id)
        assert getattr(err.value, "status_code", None) == 404


def test_an_id_held_in_another_project_is_a_conflict_not_a_crash(server, alpha):
    with raw(server, K2, root=True) as lg:
        r = lg.post("/threads", json={"thread_id": alpha["lg_thread"]})
        assert r.status_code == 409, r.text
        assert lg.get(f"/threads/{alpha['lg_thread']}").status_code == 404
