"""/v1/assistants through the official SDK (what a user sees) and raw HTTP (the exact
wire body, validated against the OpenAPI document)."""

from __future__ import annotations

import httpx
import openai
import pytest

from openapi_schemas import assert_schema
from threadloom.sandbox import sandbox_problem
from v1_checks import assert_id, assert_not_found, assert_page, assert_recent

# code_interpreter is accepted only where the server can sandbox code (test_code_interpreter_refused.py).
CODE_TOOL = [{"type": "code_interpreter"}] if sandbox_problem() is None else []

FULL = {
    "model": "gpt-4o",
    "name": "Math tutor",
    "description": "Answers questions about numbers",
    "instructions": "You are a personal math tutor.",
    "tools": [
        *CODE_TOOL,
        {
            "type": "file_search",
            "file_search": {"max_num_results": 7, "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.25}},
        },
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "strict": True,
            },
        },
    ],
    "tool_resources": {},  # real ids, filled in by `_real_resources`
    "metadata": {"team": "math", "level": "2"},
    "temperature": 0.2,
    "top_p": 0.9,
    "response_format": {"type": "json_object"},
}

@pytest.fixture(scope="module", autouse=True)
def _real_resources(server):
    """FULL's tool_resources name two real files and a real vector store: ids that name
    nothing are refused at the request."""
    with httpx.Client(base_url=server.v1, timeout=30) as http:
        files = [http.post("/files", data={"purpose": "assistants"}, files={"file": (f"{n}.txt", b"x")}).json()["id"] for n in "ab"]
        store = http.post("/vector_stores", json={"name": "tutor"}).json()["id"]
    FULL["tool_resources"] = {"code_interpreter": {"file_ids": files}, "file_search": {"vector_store_ids": [store]}}


WIRE_KEYS = {
    "id", "object", "created_at", "name", "description", "model", "instructions", "tools",
    "tool_resources", "metadata", "temperature", "top_p", "response_format",
}


def test_create_with_only_a_model_has_every_field_with_its_default(client, http):
    assistant = client.beta.assistants.create(model="gpt-4o")
    assert_id(assistant.id, "asst_")
    assert assistant.object == "assistant"
    assert assistant.model == "gpt-4o"
    assert assistant.tools == []
    assert assistant.metadata == {}
    assert (assistant.temperature, assistant.top_p, assistant.response_format) == (1.0, 1.0, "auto")

    body = http.get(f"/assistants/{assistant.id}").json()
    assert_schema(body, "AssistantObject")
    # Nullable fields are present as null, not left out.
    assert set(body) == WIRE_KEYS
    assert_recent(body["created_at"])
    assert body["created_at"] == assistant.created_at
    assert body["name"] is None and body["description"] is None and body["instructions"] is None
    assert body["tool_resources"] == {} and body["metadata"] == {} and body["tools"] == []
    assert body["temperature"] == 1 and body["top_p"] == 1 and body["response_format"] == "auto"


def test_create_raw_response_matches_the_schema(http):
    response = http.post("/assistants", json=FULL)
    assert response.status_code == 200  # creates answer 200, never 201
    assert response.headers["content-type"].startswith("application/json")
    body = assert_schema(response.json(), "AssistantObject")
    assert set(body) == WIRE_KEYS
    for key, value in FULL.items():
        assert body[key] == value, key
    assert http.get(f"/assistants/{body['id']}").json() == body


def test_every_field_round_trips_through_the_sdk(client):
    created = client.beta.assistants.create(**FULL)
    got = client.beta.assistants.retrieve(created.id)
    assert got == created
    assert got.name == "Math tutor"
    assert got.description == "Answers questions about numbers"
    assert got.instructions == "You are a personal math tutor."
    assert [t.type for t in got.tools] == [t["type"] for t in CODE_TOOL] + ["file_search", "function"]
    search, function = got.tools[-2], got.tools[-1]
    assert search.file_search.max_num_results == 7
    assert search.file_search.ranking_options.score_threshold == 0.25
    assert function.function.name == "get_weather"
    assert function.function.parameters["required"] == ["city"]
    assert function.function.strict is True
    assert got.tool_resources.code_interpreter.file_ids == FULL["tool_resources"]["code_interpreter"]["file_ids"]
    assert got.tool_resources.file_search.vector_store_ids == FULL["tool_resources"]["file_search"]["vector_store_ids"]
    assert got.metadata == {"team": "math", "level": "2"}
    assert (got.temperature, got.top_p) == (0.2, 0.9)
    assert got.response_format.type == "json_object"


@pytest.mark.parametrize(
    "response_format",
    [
        "auto",
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "answer"}},
        {
            "type": "json_schema",
            "json_schema": {
                "name": "answer-v2",
                "description": "the answer",
                "schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "strict": True,
            },
        },
    ],
)
def test_response_format_variants_are_kept(http, response_format):
    body = http.post("/assistants", json={"model": "gpt-4o", "response_format": response_format}).json()
    assert_schema(body, "AssistantObject")
    assert body["response_format"] == response_format


def test_function_tool_without_parameters_or_description(client, http):
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "function", "function": {"name": "ping"}}])
    body = assert_schema(http.get(f"/assistants/{assistant.id}").json(), "AssistantObject")
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "ping"


def test_limits_are_inclusive(http):
    """Exactly at each limit is accepted (one past it is a 400: test_validation.py)."""
    body = {
        "model": "gpt-4o",
        "name": "n" * 256,
        "description": "d" * 512,
        "instructions": "i" * 256000,
        "tools": [{"type": "file_search"}] * 128,
        "metadata": {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)},
        "temperature": 2,
        "top_p": 0,
    }
    response = http.post("/assistants", json=body)
    assert response.status_code == 200, response.text
    got = assert_schema(http.get(f"/assistants/{response.json()['id']}").json(), "AssistantObject")
    assert got["name"] == body["name"] and got["description"] == body["description"]
    assert len(got["instructions"]) == 256000 and len(got["tools"]) == 128
    assert got["metadata"] == body["metadata"]
    assert (got["temperature"], got["top_p"]) == (2, 0)
    low = http.post("/assistants", json={"model": "gpt-4o", "temperature": 0, "top_p": 1}).json()
    assert (low["temperature"], low["top_p"]) == (0, 1)


def test_lengths_count_characters_not_bytes(http):
    response = http.post("/assistants", json={"model": "gpt-4o", "name": "é" * 256, "metadata": {"ключ": "ü" * 512}})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "é" * 256


def test_explicit_nulls_mean_defaults(http):
    body = http.post(
        "/assistants",
        json={
            "model": "gpt-4o", "name": None, "description": None, "instructions": None, "tools": None,
            "tool_resources": None, "metadata": None, "temperature": None, "top_p": None, "response_format": None,
        },
    ).json()
    assert_schema(body, "AssistantObject")
    assert body["tools"] == [] and body["metadata"] == {} and body["tool_resources"] == {}
    assert (body["temperature"], body["top_p"], body["response_format"]) == (1, 1, "auto")


def test_reasoning_effort_is_accepted(client):
    assistant = client.beta.assistants.create(model="o3-mini", reasoning_effort="low")
    assert client.beta.assistants.retrieve(assistant.id).model == "o3-mini"


def test_update_changes_only_the_given_fields(client, http):
    created = client.beta.assistants.create(**FULL)
    updated = client.beta.assistants.update(created.id, name="Renamed", temperature=1.5)
    assert updated.id == created.id and updated.created_at == created.created_at
    assert updated.name == "Renamed" and updated.temperature == 1.5
    assert updated.instructions == created.instructions
    assert updated.tools == created.tools
    assert updated.metadata == created.metadata
    assert updated.response_format == created.response_format
    assert client.beta.assistants.retrieve(created.id) == updated


def test_update_raw_response_and_null_clears_a_field(http):
    assistant_id = http.post("/assistants", json=FULL).json()["id"]
    response = http.post(f"/assistants/{assistant_id}", json={"name": None, "description": None, "model": "gpt-4o-mini"})
    assert response.status_code == 200
    body = assert_schema(response.json(), "AssistantObject")
    assert body["name"] is None and body["description"] is None and body["model"] == "gpt-4o-mini"
    assert body["instructions"] == FULL["instructions"]
    assert http.get(f"/assistants/{assistant_id}").json() == body


def test_update_replaces_metadata_tools_and_resources_whole(client):
    created = client.beta.assistants.create(**FULL)
    updated = client.beta.assistants.update(
        created.id,
        metadata={"only": "this"},
        tools=[{"type": "file_search"}],
        tool_resources={"code_interpreter": {"file_ids": []}},
        response_format="auto",
    )
    assert updated.metadata == {"only": "this"}
    assert [t.type for t in updated.tools] == ["file_search"]
    assert updated.tool_resources.code_interpreter.file_ids == []
    assert updated.response_format == "auto"
    assert client.beta.assistants.retrieve(created.id) == updated


def test_update_with_an_empty_body_changes_nothing(http):
    before = http.post("/assistants", json=FULL).json()
    after = http.post(f"/assistants/{before['id']}", json={})
    assert after.status_code == 200
    assert after.json() == before


def test_delete(client, http):
    assistant = client.beta.assistants.create(model="gpt-4o")
    deleted = client.beta.assistants.delete(assistant.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (assistant.id, "assistant.deleted", True)
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.assistants.retrieve(assistant.id)
    assert err.value.status_code == 404
    assert err.value.body["message"] == f"No assistant found with id '{assistant.id}'."
    assert assistant.id not in [a.id for a in client.beta.assistants.list(limit=100)]


def test_delete_raw_response(http):
    assistant_id = http.post("/assistants", json={"model": "gpt-4o"}).json()["id"]
    response = http.delete(f"/assistants/{assistant_id}")
    assert response.status_code == 200
    assert assert_schema(response.json(), "DeleteAssistantResponse") == {
        "id": assistant_id, "object": "assistant.deleted", "deleted": True,
    }
    # Deleted means gone for every verb, including a second delete.
    assert_not_found(http.delete(f"/assistants/{assistant_id}"), "assistant", assistant_id)
    assert_not_found(http.post(f"/assistants/{assistant_id}", json={"name": "x"}), "assistant", assistant_id)


def test_unknown_assistant_through_the_sdk(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.assistants.update("asst_nope", name="x")
    assert err.value.body["message"] == "No assistant found with id 'asst_nope'."
    assert err.value.type == "invalid_request_error"


def test_list_newest_first_by_default(client, http):
    ids = [client.beta.assistants.create(model="gpt-4o", name=f"list-{i}").id for i in range(3)]
    page = client.beta.assistants.list(limit=3)
    assert [a.id for a in page.data] == ids[::-1]
    body = http.get("/assistants", params={"limit": 3}).json()
    assert assert_page(body, "ListAssistantsResponse", "AssistantObject") == ids[::-1]
    assert body["has_more"] is True  # other tests created assistants before these
    asc = http.get("/assistants", params={"limit": 2, "order": "asc", "after": ids[0]}).json()
    assert assert_page(asc, "ListAssistantsResponse", "AssistantObject") == ids[1:]
    assert asc["has_more"] is False


def test_list_items_equal_what_get_returns(http):
    created = http.post("/assistants", json=FULL).json()
    listed = http.get("/assistants", params={"limit": 1}).json()["data"][0]
    assert listed == created


def test_key_order_of_schemas_and_metadata_is_kept(http):
    """Property order in a function's parameters or a json_schema is what the model is
    shown (and the order strict structured outputs generate fields in): it must survive
    storage."""
    properties = {"zeta_last_name": {"type": "string"}, "age": {"type": "integer"}, "b": {"type": "boolean"}}
    body = {
        "model": "gpt-4o",
        "metadata": {"zz": "1", "a": "2"},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": properties}}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object", "properties": properties}}},
    }
    created = http.post("/assistants", json=body).json()
    got = http.get(f"/assistants/{created['id']}").json()
    assert list(got) == list(created)
    assert list(got["metadata"]) == list(body["metadata"])
    assert list(got["tools"][0]["function"]["parameters"]["properties"]) == list(properties)
    assert list(got["response_format"]["json_schema"]["schema"]["properties"]) == list(properties)
