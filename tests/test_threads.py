"""/v1/threads through the official SDK and raw HTTP."""

from __future__ import annotations

import openai
import pytest

from openapi_schemas import assert_schema
from v1_checks import assert_id, assert_not_found, assert_page, assert_recent


def test_create_empty_thread(client, http):
    thread = client.beta.threads.create()
    assert_id(thread.id, "thread_")
    assert thread.object == "thread"
    assert thread.metadata == {}
    body = http.get(f"/threads/{thread.id}").json()
    assert_schema(body, "ThreadObject")
    assert set(body) == {"id", "object", "created_at", "tool_resources", "metadata"}
    assert_recent(body["created_at"])
    assert body["tool_resources"] == {} and body["metadata"] == {}
    assert body["created_at"] == thread.created_at
    assert client.beta.threads.messages.list(thread.id).data == []


@pytest.mark.parametrize("content", [None, b"", b"{}"], ids=["no-body", "empty-body", "empty-object"])
def test_create_needs_no_body(server, content):
    import httpx

    headers = {"OpenAI-Beta": "assistants=v2"}
    if content is not None:
        headers["Content-Type"] = "application/json"
    response = httpx.post(server.v1 + "/threads", content=content, headers=headers)
    assert response.status_code == 200, response.text
    assert_schema(response.json(), "ThreadObject")


def test_create_with_metadata_and_tool_resources(client, http):
    file_id = http.post("/files", data={"purpose": "assistants"}, files={"file": ("a.txt", b"x")}).json()["id"]
    store_id = http.post("/vector_stores", json={}).json()["id"]
    resources = {"code_interpreter": {"file_ids": [file_id]}, "file_search": {"vector_store_ids": [store_id]}}
    thread = client.beta.threads.create(metadata={"user": "u-1", "topic": "billing"}, tool_resources=resources)
    got = client.beta.threads.retrieve(thread.id)
    assert got == thread
    assert got.metadata == {"user": "u-1", "topic": "billing"}
    assert got.tool_resources.code_interpreter.file_ids == [file_id]
    assert got.tool_resources.file_search.vector_store_ids == [store_id]
    body = assert_schema(http.get(f"/threads/{thread.id}").json(), "ThreadObject")
    assert body["tool_resources"] == resources


def test_create_with_messages(client, http):
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "What is 2+2?", "metadata": {"n": "1"}},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
        ]
    )
    messages = client.beta.threads.messages.list(thread.id, order="asc")
    assert [m.role for m in messages.data] == ["user", "assistant", "user"]
    assert messages.data[0].content[0].text.value == "What is 2+2?"
    assert messages.data[0].metadata == {"n": "1"}
    assert messages.data[1].content[0].text.value == "4"
    assert messages.data[2].content[0].text.value == "And 3+3?"
    assert messages.data[2].content[1].image_url.url == "https://example.com/a.png"
    for message in messages.data:
        assert message.thread_id == thread.id
        assert message.run_id is None and message.assistant_id is None
        assert message.status == "completed"

    body = http.get(f"/threads/{thread.id}/messages", params={"order": "asc"}).json()
    assert assert_page(body, "ListMessagesResponse", "MessageObject") == [m.id for m in messages.data]
    first = body["data"][0]
    assert first["content"] == [{"type": "text", "text": {"value": "What is 2+2?", "annotations": []}}]
    assert first["created_at"] >= thread.created_at
    assert body["data"][2]["content"][1] == {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "auto"}}


def test_create_raw_response(http):
    response = http.post("/threads", json={"messages": [{"role": "user", "content": "hi"}], "metadata": {"a": "b"}})
    assert response.status_code == 200
    body = assert_schema(response.json(), "ThreadObject")
    assert body["metadata"] == {"a": "b"}
    assert http.get(f"/threads/{body['id']}").json() == body


def test_update_metadata_replaces_it(client, http):
    thread = client.beta.threads.create(metadata={"a": "1", "b": "2"})
    updated = client.beta.threads.update(thread.id, metadata={"c": "3"})
    assert updated.id == thread.id and updated.created_at == thread.created_at
    assert updated.metadata == {"c": "3"}
    assert client.beta.threads.retrieve(thread.id).metadata == {"c": "3"}
    response = http.post(f"/threads/{thread.id}", json={"metadata": {}})
    assert response.status_code == 200
    assert assert_schema(response.json(), "ThreadObject")["metadata"] == {}


def test_update_tool_resources(client, http):
    file_id = http.post("/files", data={"purpose": "assistants"}, files={"file": ("a.txt", b"x")}).json()["id"]
    thread = client.beta.threads.create(metadata={"keep": "me"})
    updated = client.beta.threads.update(thread.id, tool_resources={"code_interpreter": {"file_ids": [file_id]}})
    assert updated.tool_resources.code_interpreter.file_ids == [file_id]
    assert updated.metadata == {"keep": "me"}
    body = assert_schema(http.get(f"/threads/{thread.id}").json(), "ThreadObject")
    assert body["tool_resources"] == {"code_interpreter": {"file_ids": [file_id]}}
    missing = http.post(f"/threads/{thread.id}", json={"tool_resources": {"code_interpreter": {"file_ids": ["file-nope"]}}})
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "No file found with id 'file-nope'."
    assert http.get(f"/threads/{thread.id}").json() == body


def test_update_with_an_empty_body_changes_nothing(http):
    before = http.post("/threads", json={"metadata": {"x": "y"}}).json()
    after = http.post(f"/threads/{before['id']}", json={})
    assert after.status_code == 200
    assert after.json() == before


def test_delete(client, http):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "bye"}])
    message_id = client.beta.threads.messages.list(thread.id).data[0].id
    deleted = client.beta.threads.delete(thread.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (thread.id, "thread.deleted", True)
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.retrieve(thread.id)
    assert err.value.body["message"] == f"No thread found with id '{thread.id}'."
    # Its messages went with it.
    assert_not_found(http.get(f"/threads/{thread.id}/messages"), "thread", thread.id)
    assert_not_found(http.get(f"/threads/{thread.id}/messages/{message_id}"), "thread", thread.id)


def test_delete_removes_the_messages_rows(server, http):
    from v1_checks import count_rows

    thread_id = http.post("/threads", json={"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}).json()["id"]
    assert count_rows(server.database, "messages", "thread_id = $1", thread_id) == 2
    assert http.delete(f"/threads/{thread_id}").status_code == 200
    assert count_rows(server.database, "messages", "thread_id = $1", thread_id) == 0
    assert count_rows(server.database, "threads", "id = $1", thread_id) == 0


def test_delete_raw_response(http):
    thread_id = http.post("/threads").json()["id"]
    response = http.delete(f"/threads/{thread_id}")
    assert response.status_code == 200
    assert assert_schema(response.json(), "DeleteThreadResponse") == {"id": thread_id, "object": "thread.deleted", "deleted": True}
    assert_not_found(http.delete(f"/threads/{thread_id}"), "thread", thread_id)
    assert_not_found(http.post(f"/threads/{thread_id}", json={"metadata": {}}), "thread", thread_id)


def test_unknown_thread_through_the_sdk(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.retrieve("thread_x")
    assert err.value.body["message"] == "No thread found with id 'thread_x'."
    assert err.value.body == {"message": "No thread found with id 'thread_x'.", "type": "invalid_request_error", "param": None, "code": None}
