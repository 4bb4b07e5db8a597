"""The LangGraph door serving the user's own graphs (--langgraph-config), driven by the
official langgraph-sdk against a server process. The example graphs are in tests/graphs/:
a tool-calling agent (its model, rule_model.RuleModel, is a LangChain chat model standing
in for the LLM), an approval step that interrupts, a graph writing custom stream events,
one with a subgraph, and a factory-made graph using the store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from conftest import stop
from conftest import test_database_url as database_under_test
from langgraph_support import client, collect, events, run, wait_status

GRAPHS = Path(__file__).parent / "graphs" / "langgraph.json"
WEATHER = {"messages": [{"role": "user", "content": "what is the weather in Paris"}]}


@pytest.fixture(scope="module")
def graphs_server(server_factory):
    return server_factory("--langgraph-config", str(GRAPHS))


def test_each_graph_has_a_default_assistant_with_its_schemas_and_drawing(graphs_server):
    async def go():
        lg = client(graphs_server)
        found = {a["graph_id"]: a for a in await lg.assistants.search(limit=100)}
        assert {"tool_agent", "approval", "progress", "nested", "notes", "agent"} <= set(found)
        schemas = await lg.assistants.get_schemas(found["tool_agent"]["assistant_id"])
        assert "messages" in schemas["input_schema"]["properties"]
        assert "topic" in (await lg.assistants.get_schemas(found["approval"]["assistant_id"]))["state_schema"]["properties"]
        drawing = await lg.assistants.get_graph(found["tool_agent"]["assistant_id"])
        assert {"agent", "tools"} <= {n["id"] for n in drawing["nodes"]}
        subgraphs = await lg.assistants.get_subgraphs(found["nested"]["assistant_id"])
        assert list(subgraphs) == ["child"]

        made = await lg.assistants.create("approval", config={"configurable": {"tone": "dry"}}, name="reviewer")
        assert made["graph_id"] == "approval" and made["version"] == 1
        changed = await lg.assistants.update(made["assistant_id"], metadata={"team": "a"})
        assert changed["version"] == 2
        assert len(await lg.assistants.get_versions(made["assistant_id"])) == 2
        # Searches filter (metadata containment, graph, name) and sort in the database.
        other = await lg.assistants.create("approval", metadata={"team": "a", "level": {"n": 2, "on": True}}, name="Alpha")
        assert [a["assistant_id"] for a in await lg.assistants.search(metadata={"team": "a"}, sort_by="name",
                                                                     sort_order="asc")] == [other["assistant_id"], made["assistant_id"]]
        assert [a["assistant_id"] for a in await lg.assistants.search(metadata={"level": {"on": True}})] == [other["assistant_id"]]
        assert [a["assistant_id"] for a in await lg.assistants.search(graph_id="approval", name="review")] == [made["assistant_id"]]
        assert await lg.assistants.count(graph_id="approval") == 3  # with the graph's default assistant
        with pytest.raises(NotFoundError):
            await lg.assistants.create("no_such_graph")

    run(go())


def test_tool_agent_streams_values_updates_and_tokens(graphs_server):
    async def go():
        lg = client(graphs_server)
        thread = await lg.threads.create()
        parts = await collect(lg.runs.stream(thread["thread_id"], "tool_agent", input=WEATHER,
                                             stream_mode=["values", "updates", "messages-tuple"]))
        assert parts[0][0] == "metadata"
        final = events(parts, "values")[-1]["messages"]
        assert [m["type"] for m in final] == ["human", "ai", "tool", "ai"]
        assert final[-1]["content"] == "The weather: sunny in Paris"
        assert [list(u) for u in events(parts, "updates")] == [["agent"], ["tools"], ["agent"]]
        tokens = "".join(m[0]["content"] for m in events(parts, "messages") if m[0]["type"] == "AIMessageChunk")
        assert tokens == "The weather: sunny in Paris"

        state = await lg.threads.get_state(thread["thread_id"])
        assert state["values"]["messages"][-1]["content"] == "The weather: sunny in Paris"
        assert state["next"] == [] and state["checkpoint"]["checkpoint_id"]
        shown = await lg.threads.get(thread["thread_id"])
        assert shown["status"] == "idle" and shown["metadata"]["graph_id"] == "tool_agent"
        assert shown["values"]["messages"][-1]["content"] == "The weather: sunny in Paris"

        # The `messages` mode (not tuples): metadata, then the message growing token by token.
        thread2 = await lg.threads.create()
        parts = await collect(lg.runs.stream(thread2["thread_id"], "tool_agent",
                                             input={"messages": [{"role": "user", "content": "hello there"}]},
                                             stream_mode="messages"))
        names = [name for name, _ in parts]
        assert "messages/metadata" in names
        partials = events(parts, "messages/partial")
        assert partials[-1][0]["content"] == "You said: hello there"

    run(go())


def test_interrupt_then_resume_with_a_command(graphs_server):
    async def go():
        lg = client(graphs_server)
        thread = await lg.threads.create()
        tid = thread["thread_id"]
        result = await lg.runs.wait(tid, "approval", input={"topic": "cats"})
        assert result["draft"] == "A post about cats"
        [pending] = result["__interrupt__"]
        assert pending["value"]["question"] == "Publish this draft?"
        shown = await lg.threads.get(tid)
        assert shown["status"] == "interrupted"
        assert [i["id"] for group in shown["interrupts"].values() for i in group] == [pending["id"]]
        state = await lg.threads.get_state(tid)
        assert state["next"] == ["review"]
        waiting = await lg.threads.search(metadata={"graph_id": "approval"}, status="interrupted", limit=100)
        assert tid in [t["thread_id"] for t in waiting]
        assert tid in [t["thread_id"] for t in await lg.threads.search(values={"topic": "cats"}, limit=100)]
        assert tid in [t["thread_id"] for t in await lg.threads.search(metadata={"graph_id": "approval"}, limit=100)]
        assert state["tasks"][0]["interrupts"][0]["value"]["draft"] == "A post about cats"

        parts = await collect(lg.runs.stream(tid, "approval", command={"resume": {"approved": True}},
                                             stream_mode="values"))
        assert events(parts, "values")[-1]["published"] == "A post about cats"
        assert (await lg.threads.get(tid))["status"] == "idle"

    run(go())


def test_interrupt_before_a_node_and_continue(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        await lg.runs.wait(tid, "progress", input={"steps": 1}, interrupt_before=["work"])
        state = await lg.threads.get_state(tid)
        assert state["next"] == ["work"] and "done" not in state["values"]
        assert (await lg.threads.get(tid))["status"] == "interrupted"
        result = await lg.runs.wait(tid, "progress", input=None)
        assert result["done"] == 1

    run(go())


def test_custom_events_and_every_other_stream_mode(graphs_server):
    async def go():
        lg = client(graphs_server)
        parts = await collect(lg.runs.stream(None, "progress", input={"steps": 3}, stream_mode="custom"))
        assert events(parts, "custom") == [{"progress": 1, "of": 3}, {"progress": 2, "of": 3}, {"progress": 3, "of": 3}]
        for mode in ("debug", "tasks", "checkpoints", "events"):
            parts = await collect(lg.runs.stream(None, "progress", input={"steps": 1}, stream_mode=mode))
            assert events(parts, mode), f"no {mode} events in {[n for n, _ in parts]}"
        debug = await collect(lg.runs.stream(None, "progress", input={"steps": 1}, stream_mode="debug"))
        assert {"checkpoint", "task", "task_result"} <= {d["type"] for d in events(debug, "debug")}

    run(go())


def test_subgraph_events_are_namespaced_when_asked_for(graphs_server):
    async def go():
        lg = client(graphs_server)
        parts = await collect(lg.runs.stream(None, "nested", input={"text": " hi "}, stream_mode="updates",
                                             stream_subgraphs=True))
        child = [(name, data) for name, data in parts if name.startswith("updates|child:")]
        assert [list(d) for _, d in child] == [["shout"], ["mark"]]
        plain = await collect(lg.runs.stream(None, "nested", input={"text": " hi "}, stream_mode="updates"))
        assert [list(d) for d in events(plain, "updates")] == [["prepare"], ["child"]]
        assert events(plain, "updates")[-1]["child"]["text"] == "HI!"

        tid = (await lg.threads.create())["thread_id"]
        await lg.runs.wait(tid, "nested", input={"text": "yo"})
        history = await lg.threads.get_history(tid)
        assert history[0]["values"]["text"] == "YO!"

    run(go())


def test_history_time_travel_and_update_state(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        await lg.runs.wait(tid, "tool_agent", input=WEATHER)
        history = await lg.threads.get_history(tid, limit=100)
        assert history[0]["next"] == [] and len(history) >= 5
        assert all(h["checkpoint"]["thread_id"] == tid for h in history)
        before_tools = next(h for h in history if h["next"] == ["tools"])
        at = await lg.threads.get_state(tid, checkpoint_id=before_tools["checkpoint_id"])
        assert at["values"]["messages"][-1]["tool_calls"][0]["name"] == "get_weather"
        # Runs with a page size and a cursor.
        page = await lg.threads.get_history(tid, limit=2, before={"configurable": {"checkpoint_id": history[1]["checkpoint_id"]}})
        assert [h["checkpoint_id"] for h in page] == [h["checkpoint_id"] for h in history[2:4]]

        # Replay from the checkpoint before the tools: a fork whose parent is that checkpoint.
        result = await lg.runs.wait(tid, "tool_agent", input=None, checkpoint_id=before_tools["checkpoint_id"])
        assert result["messages"][-1]["content"] == "The weather: sunny in Paris"
        forked = await lg.threads.get_history(tid, limit=100)
        assert len(forked) > len(history)

        # update_state as a node, then the graph goes on from there.
        written = await lg.threads.update_state(
            tid, {"messages": [{"role": "user", "content": "weather in Oslo"}]}, as_node="tools")
        assert written["checkpoint"]["checkpoint_id"] == written["checkpoint_id"]
        assert written["configurable"] == written["checkpoint"]
        result = await lg.runs.wait(tid, "tool_agent", input=None)
        assert result["messages"][-1]["content"] == "The weather: sunny in Oslo"

    run(go())


def test_copy_a_thread_and_roll_back_a_run(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        await lg.runs.wait(tid, "tool_agent", input=WEATHER)
        copy = await lg.threads.copy(tid)
        assert copy["values"]["messages"][-1]["content"] == "The weather: sunny in Paris"
        copied = await lg.threads.get_history(copy["thread_id"], limit=100)
        assert [h["checkpoint_id"] for h in copied] == [h["checkpoint_id"] for h in await lg.threads.get_history(tid, limit=100)]
        await lg.runs.wait(copy["thread_id"], "tool_agent", input={"messages": [{"role": "user", "content": "weather in Rome"}]})
        assert len((await lg.threads.get_state(tid))["values"]["messages"]) == 4  # the original is untouched

        other = (await lg.threads.create())["thread_id"]
        await lg.runs.wait(other, "progress", input={"steps": 1})
        slow = await lg.runs.create(other, "progress", input={"steps": 7, "delay": 5})
        await asyncio.sleep(0.5)
        replacing = await lg.runs.create(other, "progress", input={"steps": 3}, multitask_strategy="rollback")
        assert (await lg.runs.join(other, replacing["run_id"]))["done"] == 3
        assert slow["run_id"] not in [r["run_id"] for r in await lg.runs.list(other, limit=100)]
        history = await lg.threads.get_history(other, limit=100)
        assert slow["run_id"] not in {h["metadata"].get("run_id") for h in history}
        assert replacing["run_id"] in {h["metadata"].get("run_id") for h in history}

    run(go())


def test_deleting_a_thread_stops_its_running_run(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        slow = await lg.runs.create(tid, "progress", input={"steps": 1, "delay": 30})
        await asyncio.sleep(0.5)
        await lg.threads.delete(tid)
        with pytest.raises(NotFoundError):
            await lg.threads.get_state(tid)
        with pytest.raises(NotFoundError):
            await lg.runs.get(tid, slow["run_id"])
        # Its checkpoints went with it: a thread made again with that id starts empty.
        await lg.threads.create(thread_id=tid, graph_id="progress")
        await asyncio.sleep(0.5)
        assert (await lg.threads.get_state(tid))["values"] == {}
        assert await lg.threads.get_history(tid) == []

    run(go())


def test_graph_errors_end_the_run_with_an_error(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        parts = await collect(lg.runs.stream(tid, "progress", input={"nothing": 1}, stream_mode="values"))
        [error] = events(parts, "error")
        assert error["error"] == "KeyError"
        runs = await lg.runs.list(tid)
        assert runs[0]["status"] == "error"
        assert (await lg.threads.get(tid))["status"] == "error"

    run(go())


def test_one_run_at_a_time_per_thread(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        first = await lg.runs.create(tid, "progress", input={"steps": 1, "delay": 1.0})
        with pytest.raises(ConflictError):
            await lg.runs.create(tid, "progress", input={"steps": 1}, multitask_strategy="reject")
        second = await lg.runs.create(tid, "progress", input={"steps": 2, "delay": 0}, multitask_strategy="enqueue")
        assert (await lg.runs.join(tid, second["run_id"]))["done"] == 2
        assert (await lg.runs.get(tid, first["run_id"]))["status"] == "success"

        slow = await lg.runs.create(tid, "progress", input={"steps": 1, "delay": 5.0})
        await asyncio.sleep(0.5)
        replacing = await lg.runs.create(tid, "progress", input={"steps": 3, "delay": 0}, multitask_strategy="interrupt")
        assert (await lg.runs.join(tid, replacing["run_id"]))["done"] == 3
        assert (await lg.runs.get(tid, slow["run_id"]))["status"] == "interrupted"

        cancelled = await lg.runs.create(tid, "progress", input={"steps": 1, "delay": 5.0})
        await asyncio.sleep(0.5)
        await lg.runs.cancel(tid, cancelled["run_id"], wait=True)
        assert (await lg.runs.get(tid, cancelled["run_id"]))["status"] == "interrupted"

        # Lists filter by status and page, newest first.
        interrupted = await lg.runs.list(tid, status="interrupted")
        assert [r["run_id"] for r in interrupted] == [cancelled["run_id"], slow["run_id"]]
        everything = [r["run_id"] for r in await lg.runs.list(tid, limit=100)]
        assert len(everything) == 5
        assert [r["run_id"] for r in await lg.runs.list(tid, limit=2, offset=1)] == everything[1:3]

    run(go())


def test_join_a_stream_and_resume_it_from_an_event_id(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        created = await lg.runs.create(tid, "progress", input={"steps": 3, "delay": 0.5}, stream_mode="custom",
                                       stream_resumable=True)
        whole = await collect(lg.runs.join_stream(tid, created["run_id"]))
        assert events(whole, "custom")[-1] == {"progress": 3, "of": 3}

    run(go())
    # Raw SSE: every event carries an id, and Last-Event-ID resumes after it.
    with httpx.Client(base_url=graphs_server.url, timeout=30) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        with http.stream("POST", f"/threads/{tid}/runs/stream",
                         json={"assistant_id": "progress", "input": {"steps": 3}, "stream_mode": "custom",
                               "stream_resumable": True}) as response:
            body = response.read().decode()
        ids = [line[4:] for line in body.splitlines() if line.startswith("id: ")]
        run_id = response.headers["content-location"].rsplit("/", 1)[-1]
        assert len(ids) == 4  # metadata and three custom events
        with http.stream("GET", f"/threads/{tid}/runs/{run_id}/stream", headers={"Last-Event-ID": ids[1]}) as again:
            rest = again.read().decode()
        assert [line[4:] for line in rest.splitlines() if line.startswith("id: ")] == ids[2:]


def test_a_factory_graph_with_context_uses_the_servers_store(graphs_server):
    async def go():
        lg = client(graphs_server)
        first = await lg.runs.wait(None, "notes", input={"note": "buy milk"}, context={"user": "ann"})
        assert first == {"note": "buy milk", "count": 1, "env": "loaded"}
        second = await lg.runs.wait(None, "notes", input={"note": "call bob"}, context={"user": "ann"})
        assert second["count"] == 2
        items = await lg.store.search_items(("notes", "ann"))
        assert sorted(i["value"]["text"] for i in items["items"]) == ["buy milk", "call bob"]

    run(go())


def test_restart_between_interrupt_and_resume(server_factory):
    database = server_factory.new_database()
    first = server_factory("--langgraph-config", str(GRAPHS), database=database)

    async def interrupt():
        lg = client(first)
        tid = (await lg.threads.create())["thread_id"]
        await lg.runs.wait(tid, "approval", input={"topic": "dogs"})
        return tid

    tid = run(interrupt())
    stop(first.proc)
    second = server_factory("--langgraph-config", str(GRAPHS), database=database)

    async def resume():
        lg = client(second)
        assert (await lg.threads.get(tid))["status"] == "interrupted"
        assert (await lg.threads.get_state(tid))["next"] == ["review"]
        result = await lg.runs.wait(tid, "approval", command={"resume": {"approved": False}})
        assert result["approved"] is False and result["published"] == ""
        assert len(await lg.threads.get_history(tid)) >= 5

    run(resume())


@pytest.mark.skipif(bool(database_under_test()), reason="SQLite serves one process, so a restart finds every held run orphaned; "
                    "on PostgreSQL another process adopts them after 30 s")
def test_a_run_cut_off_by_a_crash_fails_and_the_thread_goes_on(server_factory):
    database = server_factory.new_database()
    first = server_factory("--langgraph-config", str(GRAPHS), database=database)

    async def start():
        lg = client(first)
        tid = (await lg.threads.create())["thread_id"]
        running = await lg.runs.create(tid, "progress", input={"steps": 1, "delay": 60})
        waiting = await lg.runs.create(tid, "progress", input={"steps": 2, "delay": 0}, multitask_strategy="enqueue")
        await asyncio.sleep(0.5)
        return tid, running["run_id"], waiting["run_id"]

    tid, running, waiting = run(start())
    first.proc.kill()
    first.proc.wait()
    second = server_factory("--langgraph-config", str(GRAPHS), database=database)

    async def after():
        lg = client(second)
        # Adopted, and run once its turn came.
        assert (await asyncio.wait_for(lg.runs.join(tid, waiting), 60))["done"] == 2
        crashed = await lg.runs.get(tid, running)
        assert crashed["status"] == "error"
        assert (await lg.runs.wait(tid, "progress", input={"steps": 1, "delay": 0}))["done"] == 1

    run(after())


@pytest.mark.skipif(not (database_under_test() or "").startswith("postgres"), reason="several servers share PostgreSQL")
def test_two_servers_take_turns_on_a_thread_and_cancel_each_others_runs(server_factory):
    database = server_factory.new_database()
    one = server_factory("--langgraph-config", str(GRAPHS), database=database)
    two = server_factory("--langgraph-config", str(GRAPHS), database=database)

    async def go():
        a, b = client(one), client(two)
        tid = (await a.threads.create())["thread_id"]
        first = await a.runs.create(tid, "progress", input={"steps": 1, "delay": 1.5})
        second = await b.runs.create(tid, "progress", input={"steps": 2, "delay": 0}, multitask_strategy="enqueue")
        assert (await b.runs.join(tid, second["run_id"]))["done"] == 2
        assert (await a.runs.get(tid, first["run_id"]))["status"] == "success"
        history = await b.threads.get_history(tid, limit=100)
        assert history[0]["values"]["done"] == 2

        slow = await a.runs.create(tid, "progress", input={"steps": 1, "delay": 60})
        await asyncio.sleep(0.5)
        await b.runs.cancel(tid, slow["run_id"])  # executing on the other server
        deadline = asyncio.get_running_loop().time() + 20
        while (await b.runs.get(tid, slow["run_id"]))["status"] != "interrupted":
            assert asyncio.get_running_loop().time() < deadline, "the cancel did not reach the other server"
            await asyncio.sleep(0.2)
        assert (await b.runs.wait(tid, "progress", input={"steps": 1, "delay": 0}))["done"] == 1

    run(go())


def test_a_broken_langgraph_json_stops_the_start_in_one_line(tmp_path):
    config = tmp_path / "langgraph.json"
    config.write_text('{"graphs": {"x": "./missing.py:graph"}}')
    proc = subprocess.run([sys.executable, "-m", "threadloom.cli", "serve", "--port", "0", "--database",
                           f"sqlite:///{tmp_path / 'db.sqlite'}", "--langgraph-config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "missing.py not found" in proc.stderr and "Traceback" not in proc.stderr


def test_a_graph_named_agent_replaces_the_built_in_one_and_env_comes_from_a_dotenv_file(tmp_path, server_factory):
    (tmp_path / "greeter.py").write_text(
        "import os\n"
        "from typing import TypedDict\n"
        "from langgraph.graph import END, START, StateGraph\n\n\n"
        "class State(TypedDict, total=False):\n"
        "    name: str\n"
        "    reply: str\n\n\n"
        "def greet(state: State):\n"
        "    return {'reply': os.environ['GREETER_WORD'] + ', ' + state['name']}\n\n\n"
        "builder = StateGraph(State)\n"
        "builder.add_node('greet', greet)\n"
        "builder.add_edge(START, 'greet')\n"
        "builder.add_edge('greet', END)\n"
        "graph = builder.compile()\n"
    )
    (tmp_path / "greeter.env").write_text("# read before the graphs load\nGREETER_WORD=Bonjour\n")
    config = tmp_path / "langgraph.json"
    config.write_text('{"graphs": {"agent": "./greeter.py:graph"}, "env": "./greeter.env"}')
    served = server_factory("--langgraph-config", str(config))

    async def go():
        lg = client(served)
        [agent] = [a for a in await lg.assistants.search(limit=100) if a["graph_id"] == "agent"]
        assert "name" in (await lg.assistants.get_schemas(agent["assistant_id"]))["input_schema"]["properties"]
        # No model is configured: the built-in graph could not answer this; the user's does.
        result = await lg.runs.wait(None, "agent", input={"name": "Ada"})
        assert result == {"name": "Ada", "reply": "Bonjour, Ada"}

    run(go())


def test_a_drawing_with_xray_shows_the_subgraphs_nodes(graphs_server):
    async def go():
        lg = client(graphs_server)
        [nested] = [a for a in await lg.assistants.search(graph_id="nested")]
        plain = {n["id"] for n in (await lg.assistants.get_graph(nested["assistant_id"]))["nodes"]}
        deep = {n["id"] for n in (await lg.assistants.get_graph(nested["assistant_id"], xray=True))["nodes"]}
        assert "child" in plain and not any(node.startswith("child:") for node in plain)
        assert {"child:shout", "child:mark"} <= deep

    run(go())


def test_a_user_graph_run_can_wait_before_it_starts(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create())["thread_id"]
        later = await lg.runs.create(tid, "progress", input={"steps": 1}, after_seconds=3)
        # Nothing ran yet.
        assert (await lg.runs.get(tid, later["run_id"]))["status"] == "pending"
        assert (await lg.threads.get_state(tid))["values"] == {}
        assert (await lg.runs.join(tid, later["run_id"]))["done"] == 1
        assert (await lg.runs.get(tid, later["run_id"]))["status"] == "success"

    run(go())


def test_thread_search_extracts_values_by_path(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create(metadata={"user": {"id": 7}}))["thread_id"]
        await lg.runs.wait(tid, "tool_agent", input=WEATHER)
        [found] = await lg.threads.search(ids=[tid], select=["thread_id"], extract={
            "last": "values.messages[-1].content", "first": "values.messages[0].type", "user": "metadata.user.id",
            "tool": "values.messages[1].tool_calls[0].name", "missing": "values.nothing", "past_end": "values.messages[99]"})
        assert found == {"thread_id": tid, "extracted": {
            "last": "The weather: sunny in Paris", "first": "human", "user": 7, "tool": "get_weather", "missing": None,
            "past_end": None}}
        for extract in ({"x": "status"}, {"x": ""}, {f"k{i}": "values" for i in range(11)}):
            with pytest.raises(UnprocessableEntityError):
                await lg.threads.search(ids=[tid], extract=extract)

    run(go())


def test_an_interrupt_reaches_each_stream_mode_as_langgraphs_server_sends_it(graphs_server):
    """Checked side by side with LangGraph's server (langgraph-api 0.16.7): the last `values`
    event holds the interrupt, `updates` carry it alone, other modes do not show it."""
    async def go():
        lg = client(graphs_server)

        async def stream(mode):
            tid = (await lg.threads.create())["thread_id"]
            return await collect(lg.runs.stream(tid, "approval", input={"topic": "owls"}, stream_mode=mode))

        values = events(await stream("values"), "values")
        assert [sorted(v) for v in values] == [["topic"], ["draft", "topic"], ["__interrupt__", "draft", "topic"]]
        assert values[-1]["__interrupt__"][0]["value"]["draft"] == "A post about owls"
        assert set(values[-1]["__interrupt__"][0]) == {"value", "id", "response_schema"}
        assert [list(u) for u in events(await stream("updates"), "updates")] == [["write"], ["__interrupt__"]]
        for mode in ("custom", "debug", "tasks", "checkpoints"):
            assert "values" not in [name for name, _ in await stream(mode)], mode

        checkpoints = [d["payload"] for d in events(await stream("debug"), "debug") if d["type"] == "checkpoint"]
        assert checkpoints[0]["parent_checkpoint"] is None
        assert checkpoints[1]["parent_checkpoint"] == checkpoints[0]["checkpoint"]
        assert set(checkpoints[1]["checkpoint"]) == {"thread_id", "checkpoint_ns", "checkpoint_id"}

        # `events` alone: the graph's own events, its root named after the graph id.
        root = [e for e in events(await stream("events"), "events") if not e["parent_ids"]]
        assert [(e["event"], e["name"]) for e in root] == [("on_chain_start", "approval"), ("on_chain_end", "approval")]

    run(go())


def test_checkpoints_carry_the_threads_and_the_runs_metadata(graphs_server):
    async def go():
        lg = client(graphs_server)
        tid = (await lg.threads.create(metadata={"owner": "ann"}))["thread_id"]
        await lg.runs.wait(tid, "progress", input={"steps": 1}, metadata={"tag": "first"})
        await lg.runs.wait(tid, "progress", input={"steps": 2}, metadata={"tag": "second"})
        everything = await lg.threads.get_history(tid, limit=100)
        assert len(await lg.threads.get_history(tid, limit=100, metadata={"owner": "ann"})) == len(everything)
        second = await lg.threads.get_history(tid, limit=100, metadata={"tag": "second"})
        assert second and all(h["metadata"]["tag"] == "second" for h in second) and len(second) < len(everything)

    run(go())


def test_thread_search_by_status_agrees_with_each_threads_status(graphs_server):
    """The status search filters and sorts by in SQL is the one each thread shows."""
    async def go():
        lg = client(graphs_server)
        made = {}

        async def thread(label):
            made[label] = (await lg.threads.create(metadata={"case": "status-search"}))["thread_id"]
            return made[label]

        await thread("fresh")
        await lg.runs.wait(await thread("done"), "progress", input={"steps": 1})
        await lg.runs.wait(await thread("waiting"), "approval", input={"topic": "bees"})
        await lg.runs.wait(await thread("failed"), "progress", input={"no_steps": 1}, raise_error=False)
        # A built-in graph thread (its status comes from its engine run; the embedded model answers).
        await lg.runs.wait(await thread("builtin"), "agent", input={"messages": [{"role": "user", "content": "hi"}]})
        busy = await lg.runs.create(await thread("running"), "progress", input={"steps": 1, "delay": 5})
        await wait_status(lg, made["running"], busy["run_id"], "running")

        shown = {label: (await lg.threads.get(tid))["status"] for label, tid in made.items()}
        assert shown == {"fresh": "idle", "done": "idle", "waiting": "interrupted", "failed": "error",
                         "builtin": "idle", "running": "busy"}
        ids = list(made.values())
        for status in ("idle", "busy", "interrupted", "error"):
            found = {t["thread_id"] for t in await lg.threads.search(ids=ids, status=status, limit=100)}
            assert found == {made[label] for label, s in shown.items() if s == status}, status
            assert await lg.threads.count(metadata={"case": "status-search"}, status=status) == len(found)
        ordered = await lg.threads.search(ids=ids, sort_by="status", sort_order="asc", limit=100)
        assert [t["status"] for t in ordered] == sorted(shown.values())
        await lg.runs.cancel(made["running"], busy["run_id"])

    run(go())


def test_a_thread_made_with_supersteps_starts_from_their_state(graphs_server):
    async def go():
        lg = client(graphs_server)
        made = await lg.threads.create(metadata={"graph_id": "approval"}, supersteps=[
            {"updates": [{"values": {"topic": "seals"}, "as_node": "__input__"}]},
            {"updates": [{"values": {"topic": "seals", "draft": "Seals, a draft"}, "as_node": "write"}]},
        ])
        state = await lg.threads.get_state(made["thread_id"])
        assert state["values"]["draft"] == "Seals, a draft" and state["next"] == ["review"]
        # The graph goes on from there: review interrupts, the resume publishes that draft.
        await lg.runs.wait(made["thread_id"], "approval", input=None)
        done = await lg.runs.wait(made["thread_id"], "approval", command={"resume": {"approved": True}})
        assert done["published"] == "Seals, a draft"

        # A node the graph does not have: refused, and no thread is left behind.
        before = await lg.threads.count()
        with pytest.raises(UnprocessableEntityError):
            await lg.threads.create(metadata={"graph_id": "approval"},
                                    supersteps=[{"updates": [{"values": {"draft": "x"}, "as_node": "no_such_node"}]}])
        # Without a graph, only messages (the built-in graph's state) can be written.
        with pytest.raises(UnprocessableEntityError):
            await lg.threads.create(supersteps=[{"updates": [{"values": {"topic": "x"}, "as_node": "__input__"}]}])
        assert await lg.threads.count() == before

    run(go())


def test_a_configurable_reaches_a_graph_that_reads_its_context(graphs_server):
    """As on LangGraph's server: an assistant or a run configured the older way
    (config.configurable) has those values as its context too, cut to the graph's context
    schema; with neither, the schema's defaults."""
    async def go():
        lg = client(graphs_server)
        zoe = await lg.assistants.create("notes", config={"configurable": {"user": "zoe"}})
        assert zoe["context"] == {"user": "zoe"}
        await lg.runs.wait(None, zoe["assistant_id"], input={"note": "from zoe's assistant"})
        await lg.runs.wait(None, "notes", input={"note": "from max's run"},
                           config={"configurable": {"user": "max", "not_in_the_schema": 1}})
        await lg.runs.wait(None, "notes", input={"note": "from nobody"})
        for user, text in (("zoe", "from zoe's assistant"), ("max", "from max's run"), ("anonymous", "from nobody")):
            found = (await lg.store.search_items(["notes", user], limit=100))["items"]
            assert text in [item["value"]["text"] for item in found], user
        changed = await lg.assistants.update(zoe["assistant_id"], config={"configurable": {"user": "ann"}})
        assert changed["context"] == {"user": "ann"}
        limited = await lg.assistants.update(zoe["assistant_id"], config={"recursion_limit": 5})
        assert limited["context"] == {"user": "ann"}

    run(go())
