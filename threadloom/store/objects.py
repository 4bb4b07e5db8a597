"""Reading and writing objects kept as a wire body plus query columns (plain functions of a
Connection, run inside `Database.transact` or `Database.query`).

One `ObjectStore` per table; every method takes the connection of the caller's
transaction so a service can change several objects atomically.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from threadloom.domain.errors import NotFound
from threadloom.store import tables
from threadloom.store.pagination import PageQuery, fetch_page


class ObjectStore:
    """Hot statements are built once with bind parameters: building a SQLAlchemy
    statement per call cost more than executing it."""

    def __init__(self, table: Table, kind: str, key: tuple[str, ...] = ()):
        self.table = table
        self.kind = kind  # as named in "No <kind> found with id '...'."
        # Body fields that, with the id, name one row (a file's id is its id in every
        # vector store that holds it).
        self.key = key
        self._find = select(table.c.body).where(table.c.id == bindparam("_id"))
        self._insert = insert(table)
        self._puts: dict[tuple, object] = {}

    def _scope(self, where: dict) -> list:
        """Keyword filters (thread_id=..., run_id=...) as column conditions."""
        return [self.table.c[column] == value for column, value in where.items()]

    def find(self, conn: Connection, object_id: str, **where) -> dict | None:
        if "\x00" in object_id:
            return None  # no stored id holds NUL, and PostgreSQL refuses it as a parameter
        if not where:
            return conn.execute(self._find, {"_id": object_id}).scalar()
        stmt = select(self.table.c.body).where(self.table.c.id == object_id, *self._scope(where))
        return conn.execute(stmt).scalar()

    def get(self, conn: Connection, object_id: str, **where) -> dict:
        body = self.find(conn, object_id, **where)
        if body is None:
            raise NotFound.of(self.kind, object_id)
        return body

    def insert(self, conn: Connection, body: dict, **columns) -> None:
        conn.execute(self._insert, {"id": body["id"], "created_at": body["created_at"], "body": body, **columns})

    def insert_many(self, conn: Connection, rows: list[dict]) -> None:
        """rows: column dicts, each with id, created_at, body."""
        if rows:
            conn.execute(insert(self.table), rows)

    def put(self, conn: Connection, body: dict, **columns) -> None:
        keys = {f"_{k}": body[k] for k in self.key}
        conn.execute(self.put_statement(tuple(columns)), {"_id": body["id"], "body": body, **keys, **columns})

    def put_statement(self, columns: tuple[str, ...], where_status: bool = False):
        """UPDATE ... SET body (+ columns) WHERE id (+ status), built once per column set."""
        key = (columns, where_status)
        stmt = self._puts.get(key)
        if stmt is None:
            where = [self.table.c.id == bindparam("_id")]
            where += [self.table.c[k] == bindparam(f"_{k}") for k in self.key]
            if where_status:
                where.append(self.table.c.status == bindparam("_status"))
            values = {"body": bindparam("body"), **{c: bindparam(c) for c in columns}}
            stmt = self._puts[key] = update(self.table).where(*where).values(**values)
        return stmt

    def delete(self, conn: Connection, object_id: str, **where) -> bool:
        if "\x00" in object_id:
            return False
        result = conn.execute(delete(self.table).where(self.table.c.id == object_id, *self._scope(where)))
        return result.rowcount > 0

    def delete_where(self, conn: Connection, **where) -> None:
        conn.execute(delete(self.table).where(*self._scope(where)))

    def page(self, conn: Connection, query: PageQuery, **where) -> tuple[list[dict], bool]:
        if any(isinstance(value, str) and "\x00" in value for value in where.values()):
            return [], False  # nothing matches a NUL (and PostgreSQL refuses it as a parameter)
        return fetch_page(conn, self.table, self._scope(where), query)


assistant_store = ObjectStore(tables.assistants, "assistant")
thread_store = ObjectStore(tables.threads, "thread")
message_store = ObjectStore(tables.messages, "message")
run_store = ObjectStore(tables.runs, "run")
step_store = ObjectStore(tables.run_steps, "run step")
file_store = ObjectStore(tables.files, "file")
vector_store_store = ObjectStore(tables.vector_stores, "vector store")
vector_store_file_store = ObjectStore(tables.vector_store_files, "file", key=("vector_store_id",))
file_batch_store = ObjectStore(tables.vector_store_file_batches, "file batch")
