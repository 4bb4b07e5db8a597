"""The LangGraph /store API, through the official langgraph-sdk against a server process:
items kept in threadloom's database, searched, listed by namespace, expiring, and the
same items a graph sees as its store (tests/test_langgraph_user_graphs.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import stop
from langgraph_support import client, run


def _ns(*labels: str) -> tuple[str, ...]:
    return ("t" + uuid.uuid4().hex[:8], *labels)


def test_put_get_overwrite_delete(server):
    async def go():
        lg = client(server)
        ns = _ns("docs")
        await lg.store.put_item(ns, "a", {"title": "first", "n": 1})
        item = await lg.store.get_item(ns, "a")
        assert item["namespace"] == list(ns) and item["key"] == "a" and item["value"] == {"title": "first", "n": 1}
        await asyncio.sleep(0.01)
        await lg.store.put_item(ns, "a", {"title": "second"})
        again = await lg.store.get_item(ns, "a")
        assert again["value"] == {"title": "second"}
        assert again["created_at"] == item["created_at"] and again["updated_at"] > item["updated_at"]
        await lg.store.delete_item(ns, "a")
        assert await lg.store.get_item(ns, "a") is None

    run(go())


def test_search_filters_and_pages(server):
    async def go():
        lg = client(server)
        root = _ns()
        for i in range(6):
            await lg.store.put_item((*root, "users", f"u{i % 2}"), f"k{i}",
                                    {"n": i, "kind": "even" if i % 2 == 0 else "odd", "tags": {"x": i > 3}})
        await lg.store.put_item((*root, "other"), "z", {"n": 100, "kind": "even"})
        users = await lg.store.search_items((*root, "users"), limit=100)
        assert sorted(i["key"] for i in users["items"]) == [f"k{i}" for i in range(6)]
        # Newest first, paged.
        assert [i["key"] for i in (await lg.store.search_items((*root, "users"), limit=2, offset=1))["items"]] == ["k4", "k3"]
        even = await lg.store.search_items((*root, "users"), filter={"kind": "even"}, limit=100)
        assert sorted(i["value"]["n"] for i in even["items"]) == [0, 2, 4]
        ranged = await lg.store.search_items(root, filter={"n": {"$gte": 2, "$lt": 5}}, limit=100)
        assert sorted(i["value"]["n"] for i in ranged["items"]) == [2, 3, 4]
        nested = await lg.store.search_items(root, filter={"tags": {"x": True}}, limit=100)
        assert sorted(i["value"]["n"] for i in nested["items"]) == [4, 5]
        not_even = await lg.store.search_items(root, filter={"kind": {"$ne": "even"}}, limit=100)
        assert sorted(i["value"]["n"] for i in not_even["items"]) == [1, 3, 5]
        # A query ranks by the words it shares with the value (no vector index here).
        await lg.store.put_item((*root, "notes"), "n1", {"text": "buy oat milk"})
        await lg.store.put_item((*root, "notes"), "n2", {"text": "call the bank"})
        ranked = await lg.store.search_items((*root, "notes"), query="milk to buy")
        assert [i["key"] for i in ranked["items"]] == ["n1", "n2"]
        assert ranked["items"][0]["score"] > ranked["items"][1]["score"]

    run(go())


def test_filters_compare_as_json(server):
    """A string is not a number, true is not 1, ranges compare numbers; values of other
    types under the same key neither match nor fail the search (PostgreSQL included)."""
    async def go():
        lg = client(server)
        ns = _ns()
        values = {"int": 1, "str": "1", "word": "abc", "true": True, "zero": 0, "null": None, "list": [1], "float": 1.5}
        for key, n in values.items():
            await lg.store.put_item(ns, key, {"n": n})
        await lg.store.put_item(ns, "absent", {"other": 1})

        async def keys(flt):
            return sorted(i["key"] for i in (await lg.store.search_items(ns, filter=flt, limit=100))["items"])

        assert await keys({"n": 1}) == ["int"]
        assert await keys({"n": "1"}) == ["str"]
        assert await keys({"n": True}) == ["true"]
        assert await keys({"n": 0}) == ["zero"]
        assert await keys({"n": None}) == ["absent", "null"]
        assert await keys({"n": {"$gte": 1}}) == ["float", "int"]
        assert await keys({"n": {"$lt": 1}}) == ["zero"]
        assert await keys({"n": {"$ne": 1}}) == sorted(set(values) - {"int"} | {"absent"})
        assert await keys({"n": [1]}) == ["list"]

    run(go())


def test_concurrent_puts_of_one_new_key(server):
    async def go():
        lg = client(server)
        ns = _ns()
        await asyncio.gather(*(lg.store.put_item(ns, "same", {"v": i}) for i in range(12)))
        items = (await lg.store.search_items(ns))["items"]
        assert [i["key"] for i in items] == ["same"] and items[0]["value"]["v"] in range(12)

    run(go())


def test_list_namespaces(server):
    async def go():
        lg = client(server)
        root = _ns()
        for path in (("a", "x"), ("a", "y"), ("b", "x"), ("b", "x", "deep")):
            await lg.store.put_item((*root, *path), "k", {"v": 1})
        listed = await lg.store.list_namespaces(prefix=list(root))
        assert listed["namespaces"] == [[*root, "a", "x"], [*root, "a", "y"], [*root, "b", "x"], [*root, "b", "x", "deep"]]
        assert (await lg.store.list_namespaces(prefix=[root[0], "*", "x"]))["namespaces"] == \
            [[*root, "a", "x"], [*root, "b", "x"], [*root, "b", "x", "deep"]]
        assert (await lg.store.list_namespaces(prefix=list(root), suffix=["x"]))["namespaces"] == \
            [[*root, "a", "x"], [*root, "b", "x"]]
        assert (await lg.store.list_namespaces(prefix=list(root), max_depth=2))["namespaces"] == [[*root, "a"], [*root, "b"]]
        assert (await lg.store.list_namespaces(prefix=list(root), limit=1, offset=1))["namespaces"] == [[*root, "a", "y"]]

    run(go())


def test_ttl_is_kept_and_expired_items_are_gone(server):
    async def go():
        lg = client(server)
        ns = _ns()
        await lg.store.put_item(ns, "short", {"v": 1}, ttl=0.01)  # minutes: 0.6 s
        await lg.store.put_item(ns, "long", {"v": 2}, ttl=60)
        short = await lg.store.get_item(ns, "short")
        assert short["value"] == {"v": 1}
        await asyncio.sleep(1.0)
        assert await lg.store.get_item(ns, "short") is None
        assert [i["key"] for i in (await lg.store.search_items(ns))["items"]] == ["long"]
        # Put again, it is a new item.
        await lg.store.put_item(ns, "short", {"v": 4})
        again = await lg.store.get_item(ns, "short")
        assert again["value"] == {"v": 4} and again["created_at"] > short["created_at"]

        # A read refreshes the TTL unless told not to.
        await lg.store.put_item(ns, "read", {"v": 3}, ttl=0.02)  # 1.2 s
        await asyncio.sleep(0.8)
        assert await lg.store.get_item(ns, "read") is not None
        await asyncio.sleep(0.8)  # 1.6 s after the put, 0.8 s after the read
        assert await lg.store.get_item(ns, "read", refresh_ttl=False) is not None
        await asyncio.sleep(0.6)
        assert await lg.store.get_item(ns, "read") is None

    run(go())


def test_bad_input_is_a_422(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for body in ({"namespace": ["a.b"], "key": "k", "value": {}}, {"namespace": [""], "key": "k", "value": {}},
                     {"namespace": ["a"], "key": "k", "value": [1]}, {"namespace": ["a"], "value": {}},
                     {"namespace": ["a"], "key": "k", "value": {}, "ttl": -1}, {"namespace": [], "key": "k", "value": {}},
                     {"namespace": ["langgraph", "x"], "key": "k", "value": {}},
                     {"namespace": ["a\u0000b"], "key": "k", "value": {}}, {"namespace": ["a"], "key": "k\u0000", "value": {}},
                     {"namespace": ["a"], "key": "k", "value": {"v": ["x\u0000"]}}):
            r = http.put("/store/items", json=body)
            assert r.status_code == 422 and "detail" in r.json(), body
        assert http.get("/store/items", params={"namespace": "a"}).status_code == 422
        assert http.get("/store/items", params={"namespace": "a..b", "key": "k"}).status_code == 422
        assert http.get("/store/items", params={"namespace": "a", "key": "k\u0000"}).status_code == 422
        found = http.post("/store/items/search", json={"namespace_prefix": ["a"], "filter": {"v\u0000": "x\u0000"}})
        assert found.status_code == 200 and found.json() == {"items": []}
        assert http.post("/store/items/search", json={"limit": 0}).status_code == 422
        assert http.post("/store/items/search", json={"namespace_prefix": ["a.b"]}).status_code == 422
        for body in ({"max_depth": 0}, {"prefix": ["a.b"]}, {"prefix": [""]}, {"suffix": ["x", ""]}):
            assert http.post("/store/namespaces", json=body).status_code == 422, body
        # A missing item is not an error: LangGraph answers null.
        missing = http.get("/store/items", params={"namespace": "nowhere", "key": "k"})
        assert missing.status_code == 200 and missing.json() is None


def test_items_survive_a_restart(server_factory):
    database = server_factory.new_database()
    first = server_factory(database=database)
    ns = _ns()
    run(client(first).store.put_item(ns, "kept", {"v": "still here"}))
    stop(first.proc)
    second = server_factory(database=database)
    assert run(client(second).store.get_item(ns, "kept"))["value"] == {"v": "still here"}


@pytest.mark.parametrize("key", ["plain", "with spaces", "ü-ñ"])
def test_keys_round_trip(server, key):
    ns = _ns()
    run(client(server).store.put_item(ns, key, {"k": key}))
    assert run(client(server).store.get_item(ns, key))["value"] == {"k": key}


def test_a_vector_index_ranks_the_store_by_meaning(tmp_path, server_factory):
    """langgraph.json's store.index, embedded by the server's own embedder (the offline
    all-MiniLM-L6-v2 by default), whatever model `embed` names."""
    config = tmp_path / "langgraph.json"
    progress = Path(__file__).parent / "graphs" / "progress.py"
    config.write_text(json.dumps({"graphs": {"progress": f"{progress}:graph"}, "store": {"index": {
        "embed": "openai:text-embedding-3-small", "dims": 1536, "fields": ["text"]}}}))
    served = server_factory("--langgraph-config", str(config))

    async def go():
        lg = client(served)
        facts = {"hiking": "I spend my weekends hiking up mountain trails",
                 "sushi": "My favourite dinner is salmon sushi with rice",
                 "python": "I write Python programs for a living"}
        for key, text in facts.items():
            await lg.store.put_item(["user", "facts"], key, {"text": text, "source": "chat"})
        await lg.store.put_item(["user", "facts"], "unindexed", {"text": "I like walking in the hills"}, index=False)

        found = (await lg.store.search_items(["user"], query="outdoor walks in the mountains", limit=10))["items"]
        assert sorted(item["key"] for item in found) == ["hiking", "python", "sushi", "unindexed"]
        assert found[0]["key"] == "hiking" and found[-1]["key"] == "unindexed"
        assert found[0]["score"] > found[1]["score"] >= found[2]["score"] and found[-1]["score"] is None
        food = await lg.store.search_items(["user"], query="what do I like to eat?", limit=1)
        assert [item["key"] for item in food["items"]] == ["sushi"]
        # Filters narrow before the ranking; a changed value is embedded again.
        await lg.store.put_item(["user", "facts"], "python", {"text": "I cook Italian pasta every evening", "source": "form"})
        chat = await lg.store.search_items(["user"], query="cooking pasta", filter={"source": "chat"}, limit=10)
        assert "python" not in [item["key"] for item in chat["items"]]
        assert (await lg.store.search_items(["user"], query="cooking pasta", limit=1))["items"][0]["key"] == "python"

    run(go())
