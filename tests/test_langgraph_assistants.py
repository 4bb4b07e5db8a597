"""LangGraph assistants: create / get / patch / delete / search / count, the graph's default
assistant, versions, and /v1 assistants seen from this door."""

import uuid

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from langgraph_support import client as lg_client, run

DEFAULT_AGENT_ID = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "agent"))


def test_create_get_patch_delete(server):
    tag = uuid.uuid4().hex

    async def main():
        lg = lg_client(server)
        created = await lg.assistants.create(graph_id="agent", config={"configurable": {"model_name": "m1"}},
                                             metadata={"tag": tag, "n": 1}, name="Helper", description="helps")
        got = await lg.assistants.get(created["assistant_id"])
        patched = await lg.assistants.update(created["assistant_id"], config={"configurable": {"model_name": "m2"}},
                                             metadata={"extra": True}, name="Helper 2")
        versions = await lg.assistants.get_versions(created["assistant_id"])
        await lg.assistants.delete(created["assistant_id"])
        with pytest.raises(NotFoundError) as missing:
            await lg.assistants.get(created["assistant_id"])
        return created, got, patched, versions, missing.value

    created, got, patched, versions, missing = run(main())
    assert created == got
    assert set(created) == {"assistant_id", "graph_id", "config", "context", "created_at", "updated_at", "metadata",
                            "version", "name", "description"}
    assert created["graph_id"] == "agent" and created["version"] == 1 and created["name"] == "Helper"
    assert patched["version"] == 2 and patched["name"] == "Helper 2"
    assert patched["config"] == {"configurable": {"model_name": "m2"}}
    assert patched["metadata"] == {"tag": tag, "n": 1, "extra": True}
    assert [v["version"] for v in versions] == [2, 1]
    assert missing.status_code == 404 and "not found" in missing.body["detail"]


def test_create_with_id_and_if_exists(server):
    assistant_id = str(uuid.uuid4())

    async def main():
        lg = lg_client(server)
        first = await lg.assistants.create(graph_id="agent", assistant_id=assistant_id, name="one")
        with pytest.raises(ConflictError) as conflict:
            await lg.assistants.create(graph_id="agent", assistant_id=assistant_id, name="two")
        same = await lg.assistants.create(graph_id="agent", assistant_id=assistant_id, name="three", if_exists="do_nothing")
        with pytest.raises(NotFoundError):
            await lg.assistants.create(graph_id="no-such-graph")
        return first, conflict.value, same

    first, conflict, same = run(main())
    assert conflict.body == {"detail": f"Assistant {assistant_id} already exists"}
    assert same == first


def test_the_graphs_default_assistant(server):
    async def main():
        lg = lg_client(server)
        by_graph = await lg.assistants.get("agent")
        found = await lg.assistants.search(graph_id="agent", metadata={"created_by": "system"})
        return by_graph, found

    by_graph, found = run(main())
    assert by_graph["assistant_id"] == DEFAULT_AGENT_ID
    assert by_graph["name"] == "agent" and by_graph["metadata"] == {"created_by": "system"}
    assert [a["assistant_id"] for a in found] == [DEFAULT_AGENT_ID]


def test_search_and_count(server):
    tag = uuid.uuid4().hex

    async def main():
        lg = lg_client(server)
        made = [await lg.assistants.create(graph_id="agent", metadata={"tag": tag, "i": i}, name=f"search-{i}") for i in range(3)]
        page = await lg.assistants.search(metadata={"tag": tag}, limit=2)
        rest = await lg.assistants.search(metadata={"tag": tag}, limit=2, offset=2)
        by_name = await lg.assistants.search(metadata={"tag": tag}, sort_by="name", sort_order="asc", select=["assistant_id", "name"])
        paged = await lg.assistants.search(metadata={"tag": tag}, limit=2, response_format="object")
        count = await lg.assistants.count(metadata={"tag": tag})
        one = await lg.assistants.count(metadata={"tag": tag, "i": 1})
        return made, page, rest, by_name, paged, count, one

    made, page, rest, by_name, paged, count, one = run(main())
    assert [a["assistant_id"] for a in page + rest] == [a["assistant_id"] for a in reversed(made)]  # newest first
    assert [a["name"] for a in by_name] == ["search-0", "search-1", "search-2"] and set(by_name[0]) == {"assistant_id", "name"}
    assert paged["next"] == "2" and len(paged["assistants"]) == 2
    assert count == 3 and one == 1


def test_graph_and_schemas(server):
    async def main():
        lg = lg_client(server)
        return await lg.assistants.get_graph("agent"), await lg.assistants.get_schemas("agent")

    drawn, schemas = run(main())
    assert {n["id"] for n in drawn["nodes"]} == {"__start__", "agent", "tools", "__end__"}
    assert schemas["graph_id"] == "agent" and "messages" in schemas["input_schema"]["properties"]


def test_an_openai_assistant_is_an_assistant_here(server, upstream, client):
    upstream.script({"text": "from the v1 assistant"})
    v1 = client.beta.assistants.create(model="v1-model", instructions="Talk like a pirate.", name="Pirate")

    async def main():
        lg = lg_client(server)
        got = await lg.assistants.get(v1.id)
        thread = await lg.threads.create()
        out = await lg.runs.wait(thread["thread_id"], v1.id, input={"messages": [{"role": "user", "content": "ahoy"}]})
        return got, out

    got, out = run(main())
    assert got["assistant_id"] == v1.id and got["name"] == "Pirate" and got["graph_id"] == "agent"
    assert out["messages"][-1]["content"] == "from the v1 assistant"
    sent = upstream.requests()[-1]
    assert sent["model"] == "v1-model" and sent["messages"][0] == {"role": "system", "content": "Talk like a pirate."}


def test_graph_assistants_are_visible_to_the_openai_door(server, client):
    async def main():
        return await lg_client(server).assistants.create(graph_id="agent", context={"model": "ctx-model", "system_prompt": "Be kind."},
                                                         name="Kind")

    created = run(main())
    v1 = client.beta.assistants.retrieve(created["assistant_id"])
    assert v1.model == "ctx-model" and v1.instructions == "Be kind." and v1.name == "Kind"


def test_assistant_errors(server):
    async def main():
        lg = lg_client(server)
        with pytest.raises(UnprocessableEntityError) as bad_id:
            await lg.assistants.get("not-an-id")
        with pytest.raises(UnprocessableEntityError) as bad_body:
            await lg.assistants.create(graph_id=["agent"])  # type: ignore[arg-type]
        with pytest.raises(NotFoundError) as missing:
            await lg.assistants.delete(str(uuid.uuid4()))
        return bad_id.value, bad_body.value, missing.value

    bad_id, bad_body, missing = run(main())
    assert bad_id.body["detail"].startswith("Invalid assistant: 'not-an-id'")
    assert bad_body.body["detail"].startswith("graph_id: ")
    assert missing.body["detail"].startswith("Assistant with ID ")
