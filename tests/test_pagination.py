"""Cursor pagination (limit, order, after, before, first_id/last_id/has_more) on the
assistants and messages lists, on a server of its own so the lists hold exactly what
this module created. Objects are created back to back, so most share a `created_at`
second: the order must still be the creation order."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from v1_checks import assert_invalid, assert_page

N = 25


@pytest.fixture(scope="module")
def pager(server_factory, upstream_process):
    return server_factory("--upstream", upstream_process.url)


@pytest.fixture(scope="module")
def raw(pager):
    with httpx.Client(base_url=pager.v1, timeout=30, headers={"OpenAI-Beta": "assistants=v2"}) as c:
        yield c


@pytest.fixture(scope="module")
def sdk(pager):
    with OpenAI(base_url=pager.v1, api_key="k", max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def assistant_ids(raw):
    """N assistants, in creation order (the whole assistants list of this server)."""
    assert raw.get("/assistants").json()["data"] == []
    return [raw.post("/assistants", json={"model": "gpt-4o", "name": f"a{i}"}).json()["id"] for i in range(N)]


@pytest.fixture(scope="module")
def thread_with_messages(raw):
    """A thread created with N messages in one request (one transaction, one second),
    and their ids in creation order."""
    thread = raw.post("/threads", json={"messages": [{"role": "user", "content": f"m{i}"} for i in range(N)]}).json()
    body = raw.get(f"/threads/{thread['id']}/messages", params={"order": "asc", "limit": 100}).json()
    assert [m["content"][0]["text"]["value"] for m in body["data"]] == [f"m{i}" for i in range(N)]
    assert len({m["created_at"] for m in body["data"]}) == 1
    return thread["id"], [m["id"] for m in body["data"]]


def page(raw, path, **params):
    response = raw.get(path, params=params)
    assert response.status_code == 200, response.text
    schemas = ("ListAssistantsResponse", "AssistantObject") if path == "/assistants" else ("ListMessagesResponse", "MessageObject")
    body = response.json()
    return assert_page(body, *schemas), body["has_more"]


@pytest.fixture(params=["assistants", "messages"])
def listing(request, raw, assistant_ids, thread_with_messages):
    """(path, ids in creation order) of each kind of list."""
    if request.param == "assistants":
        return "/assistants", assistant_ids
    thread_id, ids = thread_with_messages
    return f"/threads/{thread_id}/messages", ids


def test_default_is_twenty_newest_first(raw, listing):
    path, ids = listing
    got, has_more = page(raw, path)
    assert got == ids[::-1][:20]
    assert has_more is True


def test_full_list_in_both_orders(raw, listing):
    path, ids = listing
    assert page(raw, path, limit=100, order="asc") == (ids, False)
    assert page(raw, path, limit=100, order="desc") == (ids[::-1], False)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 7, N - 1, N, N + 1])
def test_walking_with_after_visits_every_item_once(raw, listing, order, limit):
    path, ids = listing
    expected = ids if order == "asc" else ids[::-1]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, "order": order}
        if cursor:
            params["after"] = cursor
        got, has_more = page(raw, path, **params)
        pages += 1
        seen += got
        # has_more is true exactly when items remain beyond this page.
        assert has_more == (len(seen) < N), (seen, has_more)
        if not has_more:
            break
        cursor = got[-1]
    assert seen == expected
    assert pages == -(-N // limit)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_has_more_at_the_exact_boundaries(raw, listing, order):
    path, ids = listing
    ordered = ids if order == "asc" else ids[::-1]
    assert page(raw, path, order=order, limit=N) == (ordered, False)
    assert page(raw, path, order=order, limit=N - 1) == (ordered[:-1], True)
    # After the second to last: exactly one left.
    assert page(raw, path, order=order, limit=1, after=ordered[-2]) == ([ordered[-1]], False)
    assert page(raw, path, order=order, limit=2, after=ordered[-3]) == (ordered[-2:], False)
    # After the last: an empty page with null ids.
    assert page(raw, path, order=order, after=ordered[-1]) == ([], False)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_before_returns_the_nearest_items_in_the_requested_order(raw, listing, order):
    path, ids = listing
    ordered = ids if order == "asc" else ids[::-1]
    x = 10
    assert page(raw, path, order=order, before=ordered[x], limit=3) == (ordered[x - 3:x], True)
    assert page(raw, path, order=order, before=ordered[x], limit=x) == (ordered[:x], False)
    assert page(raw, path, order=order, before=ordered[x], limit=100) == (ordered[:x], False)
    assert page(raw, path, order=order, before=ordered[1]) == ([ordered[0]], False)
    assert page(raw, path, order=order, before=ordered[0]) == ([], False)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_after_and_before_together(raw, listing, order):
    path, ids = listing
    ordered = ids if order == "asc" else ids[::-1]
    assert page(raw, path, order=order, after=ordered[3], before=ordered[9], limit=100) == (ordered[4:9], False)
    assert page(raw, path, order=order, after=ordered[3], before=ordered[9], limit=2) == (ordered[4:6], True)
    assert page(raw, path, order=order, after=ordered[3], before=ordered[9], limit=5) == (ordered[4:9], False)
    assert page(raw, path, order=order, after=ordered[3], before=ordered[4]) == ([], False)


def test_limit_bounds(raw, listing):
    path, ids = listing
    assert page(raw, path, limit=1) == ([ids[-1]], True)
    assert page(raw, path, limit=100) == (ids[::-1], False)
    for bad, code in (("0", "integer_below_min_value"), ("-1", "integer_below_min_value"), ("101", "integer_above_max_value")):
        assert_invalid(raw.get(path, params={"limit": bad}), "limit", code)
    for bad in ("ten", "2.5", "1e3"):
        assert_invalid(raw.get(path, params={"limit": bad}), "limit")


def test_bad_order(raw, listing):
    path, _ = listing
    assert_invalid(raw.get(path, params={"order": "newest"}), "order", "invalid_value")
    assert_invalid(raw.get(path, params={"order": "ASC"}), "order", "invalid_value")


def test_a_cursor_from_another_list_is_refused(raw, assistant_ids, thread_with_messages):
    thread_id, message_ids = thread_with_messages
    assert_invalid(raw.get("/assistants", params={"after": message_ids[0]}), "after")
    assert_invalid(raw.get(f"/threads/{thread_id}/messages", params={"before": assistant_ids[0]}), "before")
    other = raw.post("/threads", json={"messages": [{"role": "user", "content": "x"}]}).json()["id"]
    assert_invalid(raw.get(f"/threads/{other}/messages", params={"after": message_ids[0]}), "after")


def test_sdk_auto_pagination_collects_everything(sdk, assistant_ids, thread_with_messages):
    assert [a.id for a in sdk.beta.assistants.list(limit=2)] == assistant_ids[::-1]
    assert [a.id for a in sdk.beta.assistants.list(limit=4, order="asc")] == assistant_ids
    first = sdk.beta.assistants.list(limit=10)
    assert first.has_more is True and len(first.data) == 10
    assert [a.id for a in first.get_next_page().data] == assistant_ids[::-1][10:20]
    thread_id, message_ids = thread_with_messages
    assert [m.id for m in sdk.beta.threads.messages.list(thread_id, limit=3, order="asc")] == message_ids
    assert [m.id for m in sdk.beta.threads.messages.list(thread_id, limit=6)] == message_ids[::-1]


def test_messages_added_one_by_one_in_the_same_second_keep_their_order(raw):
    thread_id = raw.post("/threads").json()["id"]
    ids = [raw.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": str(i)}).json()["id"] for i in range(12)]
    assert page(raw, f"/threads/{thread_id}/messages", limit=100, order="asc") == (ids, False)
    assert page(raw, f"/threads/{thread_id}/messages", limit=5, order="desc", after=ids[8]) == (ids[3:8][::-1], True)


def test_deleted_items_leave_the_pages(raw):
    path = "/threads/{}/messages"
    thread_id = raw.post("/threads", json={"messages": [{"role": "user", "content": str(i)} for i in range(6)]}).json()["id"]
    ids, _ = page(raw, path.format(thread_id), order="asc")
    raw.delete(f"{path.format(thread_id)}/{ids[2]}")
    raw.delete(f"{path.format(thread_id)}/{ids[3]}")
    assert page(raw, path.format(thread_id), order="asc", after=ids[1], limit=2) == ([ids[4], ids[5]], False)
    assert page(raw, path.format(thread_id), order="asc", limit=3) == ([ids[0], ids[1], ids[4]], True)
