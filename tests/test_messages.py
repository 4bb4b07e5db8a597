"""/v1/threads/{thread_id}/messages through the official SDK and raw HTTP."""

from __future__ import annotations

import openai
import pytest

from openapi_schemas import assert_schema
from v1_checks import assert_id, assert_invalid, assert_not_found, assert_page, assert_recent

MESSAGE_KEYS = {
    "id", "object", "created_at", "thread_id", "status", "incomplete_details", "completed_at",
    "incomplete_at", "role", "content", "assistant_id", "run_id", "attachments", "metadata",
}


@pytest.fixture
def thread_id(client):
    return client.beta.threads.create().id


def test_create_with_string_content(client, http, thread_id):
    message = client.beta.threads.messages.create(thread_id, role="user", content="Hello there")
    assert_id(message.id, "msg_")
    assert message.object == "thread.message"
    assert message.thread_id == thread_id
    assert message.role == "user" and message.status == "completed"
    assert message.content[0].type == "text"
    assert message.content[0].text.value == "Hello there"
    assert message.content[0].text.annotations == []
    assert message.run_id is None and message.assistant_id is None

    body = http.get(f"/threads/{thread_id}/messages/{message.id}").json()
    assert_schema(body, "MessageObject")
    assert set(body) == MESSAGE_KEYS
    assert_recent(body["created_at"])
    assert body["created_at"] == message.created_at
    # API-created messages are born finished.
    assert body["completed_at"] == body["created_at"]
    assert body["incomplete_at"] is None and body["incomplete_details"] is None
    assert body["assistant_id"] is None and body["run_id"] is None
    assert body["attachments"] == [] and body["metadata"] == {}
    assert body["content"] == [{"type": "text", "text": {"value": "Hello there", "annotations": []}}]


def test_create_raw_response(http, thread_id):
    response = http.post(
        f"/threads/{thread_id}/messages",
        json={"role": "assistant", "content": "I am here", "metadata": {"source": "import"}},
    )
    assert response.status_code == 200
    body = assert_schema(response.json(), "MessageObject")
    assert set(body) == MESSAGE_KEYS
    assert body["role"] == "assistant"
    assert body["metadata"] == {"source": "import"}
    assert http.get(f"/threads/{thread_id}/messages/{body['id']}").json() == body


def test_content_parts_come_back_in_the_response_shape(client, http, thread_id):
    message = client.beta.threads.messages.create(
        thread_id,
        role="user",
        content=[
            {"type": "text", "text": "Look at these"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
            {"type": "text", "text": "What are they?"},
        ],
    )
    assert [part.type for part in message.content] == ["text", "image_url", "image_url", "text"]
    assert message.content[1].image_url.detail == "high"
    body = assert_schema(http.get(f"/threads/{thread_id}/messages/{message.id}").json(), "MessageObject")
    assert body["content"] == [
        {"type": "text", "text": {"value": "Look at these", "annotations": []}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.png", "detail": "auto"}},
        {"type": "text", "text": {"value": "What are they?", "annotations": []}},
    ]


def test_text_is_kept_exactly(client, thread_id):
    text = "  line one\n\tline two — ünïcødé 🙂 \"quotes\" <b>&amp;</b>  "
    message = client.beta.threads.messages.create(thread_id, role="user", content=text)
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id).content[0].text.value == text


def test_retrieve(client, thread_id):
    message = client.beta.threads.messages.create(thread_id, role="user", content="x", metadata={"k": "v"})
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == message


def test_update_metadata(client, http, thread_id):
    message = client.beta.threads.messages.create(thread_id, role="user", content="x", metadata={"a": "1"})
    updated = client.beta.threads.messages.update(message.id, thread_id=thread_id, metadata={"b": "2"})
    assert updated.metadata == {"b": "2"}
    assert updated.content == message.content and updated.created_at == message.created_at
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id).metadata == {"b": "2"}
    response = http.post(f"/threads/{thread_id}/messages/{message.id}", json={"metadata": {}})
    assert response.status_code == 200
    assert assert_schema(response.json(), "MessageObject")["metadata"] == {}
    unchanged = http.post(f"/threads/{thread_id}/messages/{message.id}", json={})
    assert unchanged.status_code == 200 and unchanged.json() == response.json()


def test_only_metadata_can_be_updated(http, thread_id):
    message_id = http.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "x"}).json()["id"]
    assert_invalid(http.post(f"/threads/{thread_id}/messages/{message_id}", json={"content": "y"}), "content", "unknown_parameter")
    assert http.get(f"/threads/{thread_id}/messages/{message_id}").json()["content"][0]["text"]["value"] == "x"


def test_delete(client, http, thread_id):
    keep = client.beta.threads.messages.create(thread_id, role="user", content="keep")
    gone = client.beta.threads.messages.create(thread_id, role="user", content="gone")
    deleted = client.beta.threads.messages.delete(gone.id, thread_id=thread_id)
    assert (deleted.id, deleted.object, deleted.deleted) == (gone.id, "thread.message.deleted", True)
    assert [m.id for m in client.beta.threads.messages.list(thread_id)] == [keep.id]
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.messages.retrieve(gone.id, thread_id=thread_id)
    assert err.value.body["message"] == f"No message found with id '{gone.id}'."
    assert_not_found(http.delete(f"/threads/{thread_id}/messages/{gone.id}"), "message", gone.id)
    assert_not_found(http.post(f"/threads/{thread_id}/messages/{gone.id}", json={"metadata": {}}), "message", gone.id)


def test_delete_raw_response(http, thread_id):
    message_id = http.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "x"}).json()["id"]
    response = http.delete(f"/threads/{thread_id}/messages/{message_id}")
    assert response.status_code == 200
    assert assert_schema(response.json(), "DeleteMessageResponse") == {
        "id": message_id, "object": "thread.message.deleted", "deleted": True,
    }


def test_a_message_is_reachable_only_through_its_own_thread(http, thread_id):
    other = http.post("/threads").json()["id"]
    message_id = http.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "mine"}).json()["id"]
    assert_not_found(http.get(f"/threads/{other}/messages/{message_id}"), "message", message_id)
    assert_not_found(http.post(f"/threads/{other}/messages/{message_id}", json={"metadata": {"x": "y"}}), "message", message_id)
    assert_not_found(http.delete(f"/threads/{other}/messages/{message_id}"), "message", message_id)
    # ... and none of that touched it.
    body = http.get(f"/threads/{thread_id}/messages/{message_id}").json()
    assert body["metadata"] == {}
    assert http.get(f"/threads/{other}/messages").json()["data"] == []


def test_list(client, http, thread_id):
    ids = [client.beta.threads.messages.create(thread_id, role="user", content=str(i)).id for i in range(3)]
    assert [m.id for m in client.beta.threads.messages.list(thread_id)] == ids[::-1]
    assert [m.id for m in client.beta.threads.messages.list(thread_id, order="asc")] == ids
    body = http.get(f"/threads/{thread_id}/messages").json()
    assert assert_page(body, "ListMessagesResponse", "MessageObject") == ids[::-1]
    assert body["has_more"] is False
    assert [m["content"][0]["text"]["value"] for m in body["data"]] == ["2", "1", "0"]


def test_list_of_an_empty_thread(http, thread_id):
    body = http.get(f"/threads/{thread_id}/messages").json()
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_list_filtered_by_run_id(client, http, upstream):
    upstream.script({"text": "the answer is 4"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "2+2?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    client.beta.threads.messages.create(thread.id, role="user", content="thanks")

    everything = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in everything] == ["user", "assistant", "user"]
    answer = everything[1]
    assert answer.run_id == run.id and answer.assistant_id == assistant.id

    by_run = client.beta.threads.messages.list(thread.id, run_id=run.id)
    assert [m.id for m in by_run.data] == [answer.id]
    assert by_run.data[0].content[0].text.value == "the answer is 4"

    body = http.get(f"/threads/{thread.id}/messages", params={"run_id": run.id}).json()
    assert assert_page(body, "ListMessagesResponse", "MessageObject") == [answer.id]
    assert body["has_more"] is False
    raw = body["data"][0]
    assert raw["run_id"] == run.id and raw["assistant_id"] == assistant.id and raw["status"] == "completed"
    assert_recent(raw["completed_at"])

    # A run id that produced nothing in this thread: an empty page, not an error.
    empty = http.get(f"/threads/{thread.id}/messages", params={"run_id": "run_nothing"}).json()
    assert assert_page(empty, "ListMessagesResponse", "MessageObject") == []
    other = client.beta.threads.create(messages=[{"role": "user", "content": "elsewhere"}])
    assert client.beta.threads.messages.list(other.id, run_id=run.id).data == []


def test_a_message_text_is_at_most_256000_characters(http):
    thread = http.post("/threads", json={}).json()
    ok = http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "x" * 256_000})
    assert ok.status_code == 200
    for content, param in [("x" * 256_001, "content"), ([{"type": "text", "text": "x" * 256_001}], "content[0].text")]:
        r = http.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": content})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "string_above_max_length" and r.json()["error"]["param"] == param
