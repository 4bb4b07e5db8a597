"""Reading and writing objects kept as a wire body plus query columns (plain functions of a
Connection, run inside `Database.transact` or `Database.query`).

One `ObjectStore` per table; every method takes the connection of the caller's
transaction so a service can change several objects atomically.
"""

from __future__ import annotations

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy import Connection

from threadloom.domain.errors import NotFound
from threadloom.store import tables
from threadloom.store.pagination import PageQuery, fetch_page


class ObjectStore:
    def __init__(self, table: Table, kind: str):
        self.table = table
        self.kind = kind  # as named in "No <kind> found with id '...'."

    def find(self, conn: Connection, object_id: str, *scope) -> dict | None:
        stmt = select(self.table.c.body).where(self.table.c.id == object_id, *scope)
        return (conn.execute(stmt)).scalar()

    def get(self, conn: Connection, object_id: str, *scope) -> dict:
        body = self.find(conn, object_id, *scope)
        if body is None:
            raise NotFound.of(self.kind, object_id)
        return body

    def insert(self, conn: Connection, body: dict, **columns) -> None:
        conn.execute(insert(self.table).values(id=body["id"], created_at=body["created_at"], body=body, **columns))

    def insert_many(self, conn: Connection, rows: list[dict]) -> None:
        """rows: column dicts, each with id, created_at, body."""
        if rows:
            conn.execute(insert(self.table), rows)

    def put(self, conn: Connection, body: dict, **columns) -> None:
        conn.execute(update(self.table).where(self.table.c.id == body["id"]).values(body=body, **columns))

    def delete(self, conn: Connection, object_id: str, *scope) -> bool:
        result = conn.execute(delete(self.table).where(self.table.c.id == object_id, *scope))
        return result.rowcount > 0

    def page(self, conn: Connection, query: PageQuery, *scope) -> tuple[list[dict], bool]:
        return fetch_page(conn, self.table, list(scope), query)


assistant_store = ObjectStore(tables.assistants, "assistant")
thread_store = ObjectStore(tables.threads, "thread")
message_store = ObjectStore(tables.messages, "message")
run_store = ObjectStore(tables.runs, "run")
step_store = ObjectStore(tables.run_steps, "run step")
