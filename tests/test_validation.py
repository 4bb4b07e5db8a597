"""Every validation failure on assistants, threads and messages is a 400
invalid_request_error naming the offending field in `param` (never FastAPI's 422, never
a 500); unknown ids are 404s with the hosted API's wording; a refused request writes
nothing."""

from __future__ import annotations

import pytest

from v1_checks import assert_error, assert_invalid, assert_not_found, count_rows

MANY_PAIRS = {f"k{i}": "v" for i in range(17)}
LONG_KEY = "k" * 65
FN = {"type": "function", "function": {"name": "f"}}


@pytest.fixture(scope="module")
def ids(server):
    """An assistant, a thread and a message of that thread."""
    import httpx

    with httpx.Client(base_url=server.v1) as c:
        assistant = c.post("/assistants", json={"model": "gpt-4o", "name": "keep"}).json()
        thread = c.post("/threads", json={"metadata": {"keep": "me"}}).json()
        message = c.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "keep"}).json()
    return {"assistant": assistant["id"], "thread": thread["id"], "message": message["id"]}


def with_model(**fields):
    return {"model": "gpt-4o", **fields}


# (body, param, code); code ... = not checked (the wording of the hosted API is not known).
ASSISTANT_CASES = [
    ({}, "model", "missing_required_parameter"),
    ({"name": "x"}, "model", "missing_required_parameter"),
    ({"model": 5}, "model", "invalid_type"),
    ({"model": None}, "model", "invalid_type"),
    ({"model": ["gpt-4o"]}, "model", "invalid_type"),
    (with_model(bogus=1), "bogus", "unknown_parameter"),
    (with_model(file_ids=[]), "file_ids", "unknown_parameter"),  # a v1 field
    (with_model(name="n" * 257), "name", "string_above_max_length"),
    (with_model(name=5), "name", "invalid_type"),
    (with_model(description="d" * 513), "description", "string_above_max_length"),
    (with_model(instructions="i" * 256001), "instructions", "string_above_max_length"),
    (with_model(instructions={"text": "x"}), "instructions", "invalid_type"),
    (with_model(tools=[{"type": "code_interpreter"}] * 129), "tools", "array_above_max_length"),
    (with_model(tools="code_interpreter"), "tools", "invalid_type"),
    (with_model(tools={"type": "code_interpreter"}), "tools", "invalid_type"),
    (with_model(tools=["code_interpreter"]), "tools[0]", "invalid_type"),
    (with_model(tools=[{"type": "retrieval"}]), "tools[0].type", "invalid_value"),
    (with_model(tools=[{"type": "code_interpreter"}, {"type": "browser"}]), "tools[1].type", "invalid_value"),
    (with_model(tools=[{}]), "tools[0].type", "missing_required_parameter"),
    (with_model(tools=[{"type": "code_interpreter", "extra": 1}]), "tools[0].extra", "unknown_parameter"),
    (with_model(tools=[{"type": "function"}]), "tools[0].function", "missing_required_parameter"),
    (with_model(tools=[{"type": "function", "function": {}}]), "tools[0].function.name", "missing_required_parameter"),
    (with_model(tools=[{"type": "function", "function": {"name": "has space"}}]), "tools[0].function.name", "invalid_value"),
    (with_model(tools=[{"type": "function", "function": {"name": "f" * 65}}]), "tools[0].function.name", "string_above_max_length"),
    (with_model(tools=[{"type": "function", "function": {"name": ""}}]), "tools[0].function.name", ...),
    (with_model(tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]), "tools[0].function.parameters", "invalid_type"),
    (with_model(tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]), "tools[0].function.strict", "invalid_type"),
    (with_model(tools=[{"type": "function", "function": {"name": "f", "extra": 1}}]), "tools[0].function.extra", "unknown_parameter"),
    (with_model(tools=[FN, {"type": "function", "function": {"name": "a.b"}}]), "tools[1].function.name", "invalid_value"),
    (with_model(tools=[{"type": "file_search", "file_search": {"max_num_results": 0}}]), "tools[0].file_search.max_num_results", "integer_below_min_value"),
    (with_model(tools=[{"type": "file_search", "file_search": {"max_num_results": 51}}]), "tools[0].file_search.max_num_results", "integer_above_max_value"),
    (with_model(tools=[{"type": "file_search", "file_search": {"max_num_results": "5"}}]), "tools[0].file_search.max_num_results", "invalid_type"),
    (with_model(tools=[{"type": "file_search", "file_search": {"ranking_options": {"ranker": "best", "score_threshold": 0}}}]), "tools[0].file_search.ranking_options.ranker", "invalid_value"),
    (with_model(tools=[{"type": "file_search", "file_search": {"ranking_options": {"ranker": "auto"}}}]), "tools[0].file_search.ranking_options.score_threshold", "missing_required_parameter"),
    (with_model(tools=[{"type": "file_search", "file_search": {"ranking_options": {"score_threshold": 1.5}}}]), "tools[0].file_search.ranking_options.score_threshold", "decimal_above_max_value"),
    (with_model(tool_resources={"code_interpreter": {"file_ids": ["f"] * 21}}), "tool_resources.code_interpreter.file_ids", "array_above_max_length"),
    (with_model(tool_resources={"file_search": {"vector_store_ids": ["a", "b"]}}), "tool_resources.file_search.vector_store_ids", "array_above_max_length"),
    (with_model(tool_resources={"retrieval": {}}), "tool_resources.retrieval", "unknown_parameter"),
    (with_model(tool_resources={"code_interpreter": {"file_ids": "f"}}), "tool_resources.code_interpreter.file_ids", "invalid_type"),
    (with_model(tool_resources=[]), "tool_resources", "invalid_type"),
    (with_model(metadata=MANY_PAIRS), "metadata", "object_above_max_properties"),
    (with_model(metadata={LONG_KEY: "v"}), f"metadata.{LONG_KEY}", "string_above_max_length"),
    (with_model(metadata={"k": "v" * 513}), "metadata.k", "string_above_max_length"),
    (with_model(metadata={"k": 1}), "metadata.k", "invalid_type"),
    (with_model(metadata={"k": None}), "metadata.k", "invalid_type"),
    (with_model(metadata={"k": {"nested": "x"}}), "metadata.k", "invalid_type"),
    (with_model(metadata="k=v"), "metadata", "invalid_type"),
    (with_model(metadata=[["k", "v"]]), "metadata", "invalid_type"),
    (with_model(temperature=2.01), "temperature", "decimal_above_max_value"),
    (with_model(temperature=-0.1), "temperature", "decimal_below_min_value"),
    (with_model(temperature=3), "temperature", ...),
    (with_model(temperature="1"), "temperature", "invalid_type"),
    (with_model(temperature=True), "temperature", "invalid_type"),
    (with_model(top_p=1.01), "top_p", "decimal_above_max_value"),
    (with_model(top_p=-1), "top_p", ...),
    (with_model(top_p="0.5"), "top_p", "invalid_type"),
    (with_model(response_format="json"), "response_format", ...),
    (with_model(response_format=5), "response_format", "invalid_type"),
    (with_model(response_format={"type": "xml"}), "response_format.type", "invalid_value"),
    (with_model(response_format={}), "response_format.type", "missing_required_parameter"),
    (with_model(response_format={"type": "text", "extra": 1}), "response_format.extra", "unknown_parameter"),
    (with_model(response_format={"type": "json_schema"}), "response_format.json_schema", "missing_required_parameter"),
    (with_model(response_format={"type": "json_schema", "json_schema": {}}), "response_format.json_schema.name", "missing_required_parameter"),
    (with_model(response_format={"type": "json_schema", "json_schema": {"name": "a b"}}), "response_format.json_schema.name", "invalid_value"),
    (with_model(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": "{}"}}), "response_format.json_schema.schema", "invalid_type"),
    (with_model(reasoning_effort="extreme"), "reasoning_effort", "invalid_value"),
    (with_model(reasoning_effort=1), "reasoning_effort", ...),
]


@pytest.mark.parametrize("body,param,code", ASSISTANT_CASES)
def test_create_assistant(http, body, param, code):
    assert_invalid(http.post("/assistants", json=body), param, code)


MODIFY_ASSISTANT_CASES = [(dict(c[0]), c[1], c[2]) for c in ASSISTANT_CASES if "model" in c[0] and c[1] != "model"]
MODIFY_ASSISTANT_CASES = [({k: v for k, v in body.items() if k != "model"}, param, code) for body, param, code in MODIFY_ASSISTANT_CASES] + [
    ({"model": 5}, "model", "invalid_type"),
    ({"assistant_id": "asst_x"}, "assistant_id", "unknown_parameter"),
]


@pytest.mark.parametrize("body,param,code", MODIFY_ASSISTANT_CASES)
def test_modify_assistant(http, ids, body, param, code):
    before = http.get(f"/assistants/{ids['assistant']}").json()
    assert_invalid(http.post(f"/assistants/{ids['assistant']}", json=body), param, code)
    assert http.get(f"/assistants/{ids['assistant']}").json() == before


# Message bodies: (message body, param relative to the message, code).
MESSAGE_CASES = [
    ({"content": "x"}, "role", "missing_required_parameter"),
    ({"role": "user"}, "content", "missing_required_parameter"),
    ({"role": "system", "content": "x"}, "role", "invalid_value"),
    ({"role": "tool", "content": "x"}, "role", "invalid_value"),
    ({"role": "USER", "content": "x"}, "role", "invalid_value"),
    ({"role": 1, "content": "x"}, "role", ...),
    ({"role": "user", "content": []}, "content", "empty_array"),
    ({"role": "user", "content": None}, "content", "invalid_type"),
    ({"role": "user", "content": 42}, "content", "invalid_type"),
    ({"role": "user", "content": {"type": "text", "text": "x"}}, "content", "invalid_type"),
    ({"role": "user", "content": ["x"]}, "content[0]", "invalid_type"),
    ({"role": "user", "content": [{"type": "text"}]}, "content[0].text", "missing_required_parameter"),
    ({"role": "user", "content": [{"text": "x"}]}, "content[0].type", "missing_required_parameter"),
    ({"role": "user", "content": [{"type": "video", "video": {}}]}, "content[0].type", "invalid_value"),
    ({"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}, "content[0].type", "invalid_value"),
    # The response shape of a text part is not the request shape.
    ({"role": "user", "content": [{"type": "text", "text": {"value": "x", "annotations": []}}]}, "content[0].text", "invalid_type"),
    ({"role": "user", "content": [{"type": "text", "text": "x", "extra": 1}]}, "content[0].extra", "unknown_parameter"),
    ({"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": 5}]}, "content[1].text", "invalid_type"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, "content[0].image_url.url", "missing_required_parameter"),
    ({"role": "user", "content": [{"type": "image_url"}]}, "content[0].image_url", "missing_required_parameter"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "ultra"}}]}, "content[0].image_url.detail", "invalid_value"),
    ({"role": "user", "content": [{"type": "image_file", "image_file": {}}]}, "content[0].image_file.file_id", "missing_required_parameter"),
    ({"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": "file-1", "detail": "max"}}]}, "content[0].image_file.detail", "invalid_value"),
    ({"role": "user", "content": "x", "attachments": "file-1"}, "attachments", "invalid_type"),
    ({"role": "user", "content": "x", "attachments": [{"tools": []}]}, "attachments[0].file_id", "missing_required_parameter"),
    ({"role": "user", "content": "x", "attachments": [{"file_id": "file-1", "tools": [{"type": "function"}]}]}, "attachments[0].tools[0].type", "invalid_value"),
    ({"role": "user", "content": "x", "metadata": MANY_PAIRS}, "metadata", "object_above_max_properties"),
    ({"role": "user", "content": "x", "metadata": {LONG_KEY: "v"}}, f"metadata.{LONG_KEY}", "string_above_max_length"),
    ({"role": "user", "content": "x", "metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length"),
    ({"role": "user", "content": "x", "metadata": {"k": 1}}, "metadata.k", "invalid_type"),
    ({"role": "user", "content": "x", "file_ids": []}, "file_ids", "unknown_parameter"),  # a v1 field
    ({"role": "user", "content": "x", "run_id": "run_x"}, "run_id", "unknown_parameter"),
]


@pytest.mark.parametrize("body,param,code", MESSAGE_CASES)
def test_create_message(http, ids, body, param, code):
    path = f"/threads/{ids['thread']}/messages"
    before = http.get(path, params={"limit": 100}).json()["data"]
    assert_invalid(http.post(path, json=body), param, code)
    assert http.get(path, params={"limit": 100}).json()["data"] == before


@pytest.mark.parametrize("body,param,code", MESSAGE_CASES)
def test_create_thread_with_a_bad_message(http, body, param, code):
    good = {"role": "user", "content": "fine"}
    assert_invalid(http.post("/threads", json={"messages": [good, body]}), f"messages[1].{param}", code)


THREAD_CASES = [
    ({"messages": "hello"}, "messages", "invalid_type"),
    ({"messages": {"role": "user", "content": "x"}}, "messages", "invalid_type"),
    ({"messages": ["hello"]}, "messages[0]", "invalid_type"),
    ({"messages": [None]}, "messages[0]", "invalid_type"),
    ({"metadata": MANY_PAIRS}, "metadata", "object_above_max_properties"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length"),
    ({"metadata": {LONG_KEY: "v"}}, f"metadata.{LONG_KEY}", "string_above_max_length"),
    ({"metadata": 5}, "metadata", "invalid_type"),
    ({"tool_resources": {"code_interpreter": {"file_ids": ["f"] * 21}}}, "tool_resources.code_interpreter.file_ids", "array_above_max_length"),
    ({"tool_resources": {"file_search": {"vector_store_ids": ["a", "b"]}}}, "tool_resources.file_search.vector_store_ids", "array_above_max_length"),
    ({"tool_resources": {"retrieval": {}}}, "tool_resources.retrieval", "unknown_parameter"),
    ({"assistant_id": "asst_x"}, "assistant_id", "unknown_parameter"),
]


@pytest.mark.parametrize("body,param,code", THREAD_CASES)
def test_create_thread(http, body, param, code):
    assert_invalid(http.post("/threads", json=body), param, code)


MODIFY_THREAD_CASES = [c for c in THREAD_CASES if "messages" not in c[0]] + [
    ({"messages": [{"role": "user", "content": "x"}]}, "messages", "unknown_parameter"),
]


@pytest.mark.parametrize("body,param,code", MODIFY_THREAD_CASES)
def test_modify_thread(http, ids, body, param, code):
    before = http.get(f"/threads/{ids['thread']}").json()
    assert_invalid(http.post(f"/threads/{ids['thread']}", json=body), param, code)
    assert http.get(f"/threads/{ids['thread']}").json() == before


@pytest.mark.parametrize(
    "body,param,code",
    [
        ({"metadata": MANY_PAIRS}, "metadata", "object_above_max_properties"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length"),
        ({"metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ({"metadata": "x"}, "metadata", "invalid_type"),
        ({"content": "new"}, "content", "unknown_parameter"),
        ({"role": "assistant"}, "role", "unknown_parameter"),
    ],
)
def test_modify_message(http, ids, body, param, code):
    path = f"/threads/{ids['thread']}/messages/{ids['message']}"
    before = http.get(path).json()
    assert_invalid(http.post(path, json=body), param, code)
    assert http.get(path).json() == before


# -- bodies that are not JSON objects ---------------------------------------------------


def post_paths(ids):
    return [
        "/assistants",
        f"/assistants/{ids['assistant']}",
        "/threads",
        f"/threads/{ids['thread']}",
        f"/threads/{ids['thread']}/messages",
        f"/threads/{ids['thread']}/messages/{ids['message']}",
    ]


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"model": "gpt-4o",}', b"{'model': 'gpt-4o'}", b"model=gpt-4o", b"\xff\xfe{}", b'{"a": 1} trailing'],
    ids=["truncated", "trailing-comma", "single-quotes", "form", "not-utf8", "trailing-garbage"],
)
def test_body_that_is_not_json(http, ids, raw):
    for path in post_paths(ids):
        error = assert_error(http.post(path, content=raw, headers={"Content-Type": "application/json"}), 400, param=None)
        assert "JSON" in error["message"], error


@pytest.mark.parametrize("raw", [b"[]", b'[{"model": "gpt-4o"}]', b'"gpt-4o"', b"42", b"true", b"null"])
def test_body_that_is_json_but_not_an_object(http, ids, raw):
    for path in post_paths(ids):
        error = assert_error(http.post(path, content=raw, headers={"Content-Type": "application/json"}), 400, param=None)
        assert "NoneType" not in error["message"] and "dict" not in error["message"], error


# -- every field, every wrong type: never a 422 or a 500 ----------------------------------

WRONG_VALUES = [None, True, 0, -1, 1.5, "", "x" * 3, [], [None], {}, {"type": None}, [{"type": None}]]

FIELDS = {
    "/assistants": ["model", "name", "description", "instructions", "tools", "tool_resources", "metadata", "temperature", "top_p", "response_format", "reasoning_effort"],
    "/threads": ["messages", "tool_resources", "metadata"],
    "messages": ["role", "content", "attachments", "metadata"],
}


@pytest.mark.parametrize("path,field", [(p, f) for p, fields in FIELDS.items() for f in fields])
def test_any_value_of_any_field_is_answered_200_or_400(http, ids, path, field):
    base = {"/assistants": {"model": "gpt-4o"}, "/threads": {}, "messages": {"role": "user", "content": "x"}}[path]
    url = f"/threads/{ids['thread']}/messages" if path == "messages" else path
    for value in WRONG_VALUES:
        response = http.post(url, json={**base, field: value})
        assert response.status_code in (200, 400), (field, value, response.status_code, response.text)
        if response.status_code == 400:
            error = assert_error(response, 400)
            assert error["param"] and error["param"].split(".")[0].split("[")[0] == field, (field, value, error)


# -- unknown ids: 404 with the hosted API's wording ----------------------------------------


def not_found_cases():
    t, m = "{thread}", "{message}"
    return [
        ("GET", "/assistants/asst_missing", "assistant", "asst_missing"),
        ("POST", "/assistants/asst_missing", "assistant", "asst_missing"),
        ("DELETE", "/assistants/asst_missing", "assistant", "asst_missing"),
        ("GET", "/threads/thread_missing", "thread", "thread_missing"),
        ("POST", "/threads/thread_missing", "thread", "thread_missing"),
        ("DELETE", "/threads/thread_missing", "thread", "thread_missing"),
        ("GET", "/threads/thread_missing/messages", "thread", "thread_missing"),
        ("POST", "/threads/thread_missing/messages", "thread", "thread_missing"),
        ("GET", "/threads/thread_missing/messages/msg_missing", "thread", "thread_missing"),
        ("POST", "/threads/thread_missing/messages/msg_missing", "thread", "thread_missing"),
        ("DELETE", "/threads/thread_missing/messages/msg_missing", "thread", "thread_missing"),
        ("GET", f"/threads/{t}/messages/msg_missing", "message", "msg_missing"),
        ("POST", f"/threads/{t}/messages/msg_missing", "message", "msg_missing"),
        ("DELETE", f"/threads/{t}/messages/msg_missing", "message", "msg_missing"),
        # A real message id asked for through a thread it does not belong to.
        ("GET", f"/threads/{{other}}/messages/{m}", "message", m),
        ("POST", f"/threads/{{other}}/messages/{m}", "message", m),
        ("DELETE", f"/threads/{{other}}/messages/{m}", "message", m),
    ]


@pytest.mark.parametrize("method,path,kind,object_id", not_found_cases())
def test_unknown_ids_are_404(http, ids, method, path, kind, object_id):
    other = http.post("/threads").json()["id"]
    fill = {"thread": ids["thread"], "message": ids["message"], "other": other}
    path, object_id = path.format(**fill), object_id.format(**fill)
    body = {"role": "user", "content": "x"} if path.endswith("/messages") else {"metadata": {"k": "v"}}
    response = http.request(method, path, json=body if method == "POST" else None)
    assert_not_found(response, kind, object_id)
    # The message of the real thread is untouched by any of this.
    message = http.get(f"/threads/{ids['thread']}/messages/{ids['message']}")
    assert message.status_code == 200 and message.json()["metadata"] == {}


def test_unknown_route_and_method(http):
    error = assert_error(http.get("/no_such_thing"), 404, param=None)
    assert "/v1/no_such_thing" in error["message"]
    assert_error(http.put("/assistants"), 405)
    assert_error(http.patch("/threads/thread_x"), 405)
    assert_error(http.get("/threads"), 405)  # threads cannot be listed in the Assistants API


def test_v1_beta_header_is_refused(http):
    error = assert_error(http.get("/assistants", headers={"OpenAI-Beta": "assistants=v1"}), 400)
    assert error["code"] == "invalid_beta"
    error = assert_error(http.post("/threads", headers={"OpenAI-Beta": "assistants=v1"}), 400)
    assert error["code"] == "invalid_beta"


def test_a_missing_beta_header_is_accepted(server):
    import httpx

    assert httpx.post(server.v1 + "/threads").status_code == 200
    assert httpx.get(server.v1 + "/assistants").status_code == 200


# -- nothing is half-written ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body,param",
    [
        ({"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": "ok", "metadata": MANY_PAIRS}]}, "messages[1].metadata"),
        ({"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": "ok", "metadata": {"k": "v" * 513}}]}, "messages[1].metadata.k"),
        ({"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": []}]}, "messages[1].content"),
        ({"messages": [{"role": "user", "content": "ok"}], "metadata": MANY_PAIRS}, "metadata"),
        ({"messages": [{"role": "user", "content": "ok"}], "metadata": {"k": "v" * 513}}, "metadata.k"),
    ],
)
def test_a_refused_thread_create_writes_nothing(server, http, body, param):
    threads, messages = count_rows(server.database, "threads"), count_rows(server.database, "messages")
    assert_invalid(http.post("/threads", json=body), param)
    assert count_rows(server.database, "threads") == threads
    assert count_rows(server.database, "messages") == messages


def test_a_refused_assistant_create_writes_nothing(server, http):
    assistants = count_rows(server.database, "assistants")
    assert_invalid(http.post("/assistants", json={"model": "gpt-4o", "metadata": MANY_PAIRS}), "metadata")
    assert_invalid(http.post("/assistants", json={"model": "gpt-4o", "metadata": {"k": "v" * 513}}), "metadata.k")
    assert count_rows(server.database, "assistants") == assistants


# -- what the SDK user sees -----------------------------------------------------------------


def test_sdk_raises_bad_request_with_param_and_code(client, ids):
    import openai

    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o", name="n" * 257)
    assert err.value.status_code == 400
    assert err.value.param == "name" and err.value.code == "string_above_max_length"
    assert err.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(ids["thread"], role="user", content=[])
    assert err.value.param == "content"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.create(metadata=MANY_PAIRS)
    assert err.value.code == "object_above_max_properties"
    assert "at most 16" in err.value.message


# -- the NUL character: PostgreSQL cannot store it, so no database may accept it -----------


@pytest.mark.parametrize(
    "path,body,param",
    [
        ("/assistants", {"model": "gpt-4o", "name": "a\u0000b"}, "name"),
        ("/assistants", {"model": "gpt-4o\u0000"}, "model"),
        ("/assistants", {"model": "gpt-4o", "metadata": {"k": "v\u0000"}}, "metadata.k"),
        ("/assistants", {"model": "gpt-4o", "metadata": {"k\u0000": "v"}}, "metadata.k\u0000"),
        ("/assistants", {"model": "gpt-4o", "tools": [{"type": "function", "function": {"name": "f", "description": "\u0000"}}]}, "tools[0].function.description"),
        ("/threads", {"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": "x\u0000"}]}, "messages[1].content"),
        ("{thread}/messages", {"role": "user", "content": [{"type": "text", "text": "\u0000"}]}, "content[0].text"),
        ("{thread}", {"metadata": {"a": "\u0000"}}, "metadata.a"),
    ],
)
def test_nul_in_a_string_is_a_400(http, ids, path, body, param):
    url = path.format(thread=f"/threads/{ids['thread']}")
    assert_invalid(http.post(url, json=body), param, "invalid_value")


def test_an_escaped_backslash_u0000_is_only_text(http):
    body = http.post("/assistants", json={"model": "gpt-4o", "name": "\\u0000"}).json()
    assert body["name"] == "\\u0000"


@pytest.mark.parametrize(
    "method,path,kind,object_id",
    [
        ("GET", "/assistants/asst_%00", "assistant", "asst_\u0000"),
        ("DELETE", "/assistants/asst_%00", "assistant", "asst_\u0000"),
        ("GET", "/threads/thread_%00", "thread", "thread_\u0000"),
        ("POST", "/threads/thread_%00", "thread", "thread_\u0000"),
        ("GET", "/threads/thread_%00/messages", "thread", "thread_\u0000"),
        ("POST", "/threads/thread_%00/messages", "thread", "thread_\u0000"),
        ("GET", "{thread}/messages/msg_%00", "message", "msg_\u0000"),
    ],
)
def test_nul_in_an_id_is_a_404(http, ids, method, path, kind, object_id):
    url = path.format(thread=f"/threads/{ids['thread']}")
    body = {"role": "user", "content": "x"} if url.endswith("/messages") else {"metadata": {}}
    assert_not_found(http.request(method, url, json=body if method == "POST" else None), kind, object_id)


def test_nul_in_list_queries(http, ids):
    assert_invalid(http.get("/assistants", params={"after": "asst_\u0000"}), "after")
    assert_invalid(http.get(f"/threads/{ids['thread']}/messages", params={"before": "msg_\u0000"}), "before")
    body = http.get(f"/threads/{ids['thread']}/messages", params={"run_id": "run_\u0000"}).json()
    assert body["data"] == []


# -- no /v1 endpoint answers garbage with FastAPI's 422 or a 500 ---------------------------

SPEC_ENDPOINTS = [
    ("GET", "/assistants"), ("POST", "/assistants"),
    ("GET", "/assistants/{a}"), ("POST", "/assistants/{a}"), ("DELETE", "/assistants/{a}"),
    ("POST", "/threads"), ("GET", "/threads/{t}"), ("POST", "/threads/{t}"), ("DELETE", "/threads/{t}"),
    ("POST", "/threads/runs"),
    ("GET", "/threads/{t}/messages"), ("POST", "/threads/{t}/messages"),
    ("GET", "/threads/{t}/messages/{m}"), ("POST", "/threads/{t}/messages/{m}"), ("DELETE", "/threads/{t}/messages/{m}"),
    ("GET", "/threads/{t}/runs"), ("POST", "/threads/{t}/runs"),
    ("GET", "/threads/{t}/runs/{r}"), ("POST", "/threads/{t}/runs/{r}"),
    ("POST", "/threads/{t}/runs/{r}/cancel"), ("POST", "/threads/{t}/runs/{r}/submit_tool_outputs"),
    ("GET", "/threads/{t}/runs/{r}/steps"), ("GET", "/threads/{t}/runs/{r}/steps/{s}"),
]
GARBAGE_QUERY = {"limit": "many", "order": "sideways", "after": "x", "before": "y", "run_id": "z", "include[]": "nonsense", "stream": "maybe"}
GARBAGE_BODIES = [b"{", b"[]", b'{"unknown_field": 1}', b'{"stream": "yes", "limit": {}}']


@pytest.mark.parametrize("method,path", SPEC_ENDPOINTS)
def test_garbage_never_gets_a_422_or_500(http, ids, method, path):
    real = path.format(a=ids["assistant"], t=ids["thread"], m=ids["message"], r="run_garbage", s="step_garbage")
    junk = path.format(a="asst_%25zz", t="thread_%20x", m="msg_..", r="run_%22", s="step_%27")
    for url in (real, junk):
        bodies = GARBAGE_BODIES if method == "POST" else [None]
        for content in bodies:
            response = http.request(method, url, params=GARBAGE_QUERY, content=content, headers={"Content-Type": "application/json"})
            assert response.status_code not in (422, 500), (method, url, content, response.status_code, response.text)
            if response.status_code >= 400:
                assert_error(response, response.status_code)


@pytest.mark.parametrize("path", ["/assistants", "/threads"])
def test_a_vector_store_helper_naming_no_file_writes_nothing(http, path):
    # The helper creates a store in the same transaction as the object: a file id that
    # names nothing refuses the whole request, leaving neither object nor store behind.
    body = {"tool_resources": {"file_search": {"vector_stores": [{"file_ids": ["file-abc"]}]}}}
    if path == "/assistants":
        body["model"] = "gpt-4o"
    before = http.get("/assistants", params={"limit": 100}).json()["data"] if path == "/assistants" else None
    stores = http.get("/vector_stores", params={"limit": 100}).json()["data"]
    response = http.post(path, json=body)
    assert_error(response, 404, message="No file found with id 'file-abc'.")
    assert http.get("/vector_stores", params={"limit": 100}).json()["data"] == stores
    if before is not None:
        assert http.get("/assistants", params={"limit": 100}).json()["data"] == before

def test_a_deeply_nested_body_is_a_400_not_a_500(http):
    deep: dict = {}
    cur = deep
    for _ in range(300):
        cur["a"] = {}
        cur = cur["a"]
    r = http.post("/assistants", json={"model": "m", "tools": [{"type": "function", "function": {"name": "f", "parameters": deep}}]})
    assert_error(r, 400, code="invalid_value")
    r = http.post("/threads", content=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"})
    assert_error(r, 400)
