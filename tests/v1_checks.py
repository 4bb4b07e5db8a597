"""Assertions shared by the /v1 foundation tests (assistants, threads, messages):
OpenAI's error shape, list pages, object ids, and direct row counts for "nothing was
written" checks."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time

from openapi_schemas import assert_schema

ID_SUFFIX = r"[A-Za-z0-9]{24}"


def assert_id(value: str, prefix: str) -> None:
    assert re.fullmatch(re.escape(prefix) + ID_SUFFIX, value), value


def assert_recent(timestamp, slack: int = 120) -> None:
    """An integer Unix time in seconds, close to now (not milliseconds, not a float)."""
    assert type(timestamp) is int, timestamp
    assert abs(timestamp - time.time()) < slack, timestamp


def assert_error(response, status: int, *, param=..., code=..., message=None, type_="invalid_request_error") -> dict:
    """An error in OpenAI's shape; returns the inner error object."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert_schema(body, "ErrorResponse")
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == type_, error
    assert isinstance(error["message"], str) and error["message"], error
    if param is not ...:
        assert error["param"] == param, error
    if code is not ...:
        assert error["code"] == code, error
    if message is not None:
        assert error["message"] == message, error
    return error


def assert_invalid(response, param, code=...) -> dict:
    """A validation failure: 400 invalid_request_error naming the offending field."""
    return assert_error(response, 400, param=param, code=code)


def assert_not_found(response, kind: str, object_id: str) -> dict:
    return assert_error(response, 404, param=None, code=None, message=f"No {kind} found with id '{object_id}'.")


def assert_page(body: dict, list_schema: str, item_schema: str) -> list[str]:
    """A cursor page; validates it against the spec and returns the ids in it."""
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}, set(body)
    assert body["object"] == "list"
    assert isinstance(body["has_more"], bool)
    ids = [item["id"] for item in body["data"]]
    if ids:
        assert_schema(body, list_schema)
        assert body["first_id"] == ids[0] and body["last_id"] == ids[-1], body
    else:
        # The spec types first_id/last_id as strings; an empty page carries nulls
        # (ASSISTANTS_API.md, list endpoints).
        assert body["first_id"] is None and body["last_id"] is None, body
        assert body["has_more"] is False, body
    for item in body["data"]:
        assert_schema(item, item_schema)
    return ids


# -- looking at the database directly -----------------------------------------------


def count_rows(database_url: str, table: str, where: str = "", *args) -> int:
    """Row count of one table of the server's database (SQLite file or PostgreSQL)."""
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with sqlite3.connect(path) as conn:
            return conn.execute(sql.replace("$1", "?"), args).fetchone()[0]
    import asyncpg

    async def run():
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


# -- vector stores ---------------------------------------------------------------------


def wait_store(client, store_id: str, timeout: float = 120):
    """Poll a vector store until no file of it is in progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = client.vector_stores.retrieve(store_id)
        if store.status != "in_progress":
            return store
        time.sleep(0.1)
    raise AssertionError(f"vector store {store_id} still in progress after {timeout}s")


def create_store(client, **kwargs):
    """vector_stores.create, then wait for its files (the SDK has create_and_poll for
    store files and batches, not for stores)."""
    return wait_store(client, client.vector_stores.create(**kwargs).id)
