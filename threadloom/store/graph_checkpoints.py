"""LangGraph's checkpointer over threadloom's database: a user graph's checkpoints and
pending writes live in `graph_checkpoints` / `graph_checkpoint_writes`, beside the
threads they belong to (SQLite or PostgreSQL, so they survive restarts and are shared by
every server on one PostgreSQL).

A checkpoint is stored whole, serialized by the graph's serde (msgpack, typed); its
metadata as JSON, so history filters run in SQL. Graphs call the async methods from the
event loop; the sync ones exist for code that reads state from a worker thread (a sync
node calling `graph.get_state`), and hop onto the loop.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any, AsyncIterator, Iterator, Sequence

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from sqlalchemy import Connection, and_, delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from threadloom.store import tables
from threadloom.store.database import Database
from threadloom.store.json_filters import json_equals
from threadloom.store.threads import copy_checkpoints

_checkpoints, _writes = tables.graph_checkpoints, tables.graph_checkpoint_writes
# Checkpoints whose writes one query reads: three parameters each, well under SQLite's limit.
_WRITES_PER_QUERY = 500


# An escaped NUL (\u0000 after an even run of backslashes) in JSON text.
_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def _json_safe(value) -> dict:
    """Metadata as JSON can hold it: config values of any type as text, and NUL characters
    as U+FFFD (PostgreSQL reads no member of a JSON value that holds one, so one would
    break every metadata filter over the thread)."""
    text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    return orjson.loads(_NUL.sub(rb"\1\\ufffd", text))


def _metadata_filter(conn: Connection, subset: dict):
    """Checkpoint metadata equal to `subset` on each of its keys, in SQL; None when a value
    is an object or a list (compared in Python)."""
    conditions = [json_equals(conn, _checkpoints.c.metadata, key, value) for key, value in subset.items()]
    return None if any(c is None for c in conditions) else and_(*conditions)


class DatabaseCheckpointSaver(BaseCheckpointSaver[str]):
    def __init__(self, db: Database):
        super().__init__()
        self.db = db
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- reading ------------------------------------------------------------------------------

    def _tuples(self, conn: Connection, rows) -> list[CheckpointTuple]:
        """The checkpoints of `rows` with their pending writes, read a few hundred
        checkpoints per query (a thread's history is one list)."""
        keys = list({(r.thread_id, r.checkpoint_ns, r.checkpoint_id): None for r in rows})
        pending: dict[tuple, list] = {key: [] for key in keys}
        checkpoint = tuple_(_writes.c.thread_id, _writes.c.checkpoint_ns, _writes.c.checkpoint_id)
        for start in range(0, len(keys), _WRITES_PER_QUERY):
            writes = conn.execute(
                select(
                    _writes.c.thread_id,
                    _writes.c.checkpoint_ns,
                    _writes.c.checkpoint_id,
                    _writes.c.task_id,
                    _writes.c.channel,
                    _writes.c.type,
                    _writes.c.value,
                )
                .where(checkpoint.in_(keys[start : start + _WRITES_PER_QUERY]))
                .order_by(_writes.c.task_path, _writes.c.task_id, _writes.c.idx)
            ).all()
            for thread_id, ns, checkpoint_id, task_id, channel, kind, value in writes:
                value = self.serde.loads_typed((kind, value))
                pending[(thread_id, ns, checkpoint_id)].append((task_id, channel, value))
        return [self._tuple(row, pending[(row.thread_id, row.checkpoint_ns, row.checkpoint_id)]) for row in rows]

    def _tuple(self, row, pending_writes: list) -> CheckpointTuple:
        thread_id, ns, checkpoint_id, parent_id, kind, blob, metadata = row
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
        parent = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
            if parent_id
            else None
        )
        return CheckpointTuple(
            config=config,
            checkpoint=self.serde.loads_typed((kind, blob)),
            metadata=metadata,
            parent_config=parent,
            pending_writes=pending_writes,
        )

    _COLUMNS = (
        _checkpoints.c.thread_id,
        _checkpoints.c.checkpoint_ns,
        _checkpoints.c.checkpoint_id,
        _checkpoints.c.parent_checkpoint_id,
        _checkpoints.c.type,
        _checkpoints.c.checkpoint,
        _checkpoints.c.metadata,
    )

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._loop = asyncio.get_running_loop()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)

        def read(conn):
            stmt = select(*self._COLUMNS).where(
                _checkpoints.c.thread_id == thread_id, _checkpoints.c.checkpoint_ns == ns
            )
            if checkpoint_id:
                stmt = stmt.where(_checkpoints.c.checkpoint_id == checkpoint_id)
            else:
                stmt = stmt.order_by(_checkpoints.c.checkpoint_id.desc()).limit(1)
            row = conn.execute(stmt).first()
            return self._tuples(conn, [row])[0] if row else None

        return await self.db.query(read)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Newest first (checkpoint ids are time-ordered UUIDv6)."""
        self._loop = asyncio.get_running_loop()

        def read(conn):
            stmt = select(*self._COLUMNS)
            if config is not None:
                configurable = config["configurable"]
                stmt = stmt.where(_checkpoints.c.thread_id == str(configurable["thread_id"]))
                if configurable.get("checkpoint_ns") is not None:
                    stmt = stmt.where(_checkpoints.c.checkpoint_ns == configurable["checkpoint_ns"])
                if get_checkpoint_id(config):
                    stmt = stmt.where(_checkpoints.c.checkpoint_id == get_checkpoint_id(config))
            if before is not None and get_checkpoint_id(before):
                stmt = stmt.where(_checkpoints.c.checkpoint_id < get_checkpoint_id(before))
            exact = True
            if filter:
                condition = _metadata_filter(conn, filter)
                if condition is None:
                    exact = False  # a filter SQL cannot say: applied below, so no SQL limit
                else:
                    stmt = stmt.where(condition)
            stmt = stmt.order_by(_checkpoints.c.checkpoint_id.desc())
            if limit and exact:
                stmt = stmt.limit(limit)
            rows = conn.execute(stmt).all()
            if not exact:
                rows = [row for row in rows if all(row.metadata.get(k) == v for k, v in filter.items())]
            return self._tuples(conn, rows[:limit] if limit else rows)

        for item in await self.db.query(read):
            yield item

    # -- writing ------------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._loop = asyncio.get_running_loop()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        kind, blob = self.serde.dumps_typed(checkpoint)
        values = {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": configurable.get("checkpoint_id"),
            "type": kind,
            "checkpoint": blob,
            "metadata": _json_safe(get_serializable_checkpoint_metadata(config, metadata)),
        }

        def write(conn):
            key = and_(
                _checkpoints.c.thread_id == thread_id,
                _checkpoints.c.checkpoint_ns == ns,
                _checkpoints.c.checkpoint_id == checkpoint["id"],
            )
            if conn.execute(select(_checkpoints.c.seq).where(key)).first() is None:
                conn.execute(insert(_checkpoints), values)
            else:
                conn.execute(update(_checkpoints).where(key).values(**values))

        await self.db.transact(write)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._loop = asyncio.get_running_loop()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        checkpoint_id = configurable["checkpoint_id"]
        rows = []
        for index, (channel, value) in enumerate(writes):
            kind, blob = self.serde.dumps_typed(value)
            rows.append(
                {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                    "task_id": task_id,
                    "task_path": task_path,
                    "idx": WRITES_IDX_MAP.get(channel, index),
                    "channel": channel,
                    "type": kind,
                    "value": blob,
                }
            )
        # Special channels (error, interrupt, resume: negative idx) are replaced; a task's
        # other writes are kept as first written (a retried task writes them again).
        special = [row for row in rows if row["idx"] < 0]
        regular = [row for row in rows if row["idx"] >= 0]
        target = [
            _writes.c.thread_id,
            _writes.c.checkpoint_ns,
            _writes.c.checkpoint_id,
            _writes.c.task_id,
            _writes.c.idx,
        ]

        def write(conn):
            stmt = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(_writes)
            if special:
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=target,
                        set_={
                            "channel": stmt.excluded.channel,
                            "type": stmt.excluded.type,
                            "value": stmt.excluded.value,
                            "task_path": stmt.excluded.task_path,
                        },
                    ),
                    special,
                )
            if regular:
                conn.execute(stmt.on_conflict_do_nothing(index_elements=target), regular)

        await self.db.transact(write)

    async def adelete_thread(self, thread_id: str) -> None:
        def remove(conn):
            for table in (_writes, _checkpoints):
                conn.execute(delete(table).where(table.c.thread_id == str(thread_id)))

        await self.db.transact(remove)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.db.transact(lambda conn: copy_checkpoints(conn, str(source_thread_id), str(target_thread_id)))

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """Monotonic versions: a counter, then a random tail (as LangGraph's own savers)."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- the sync interface, from worker threads -------------------------------------------------

    def _on_loop(self, coro):
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the checkpointer is used before any graph ran on the server's loop")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("use the async checkpointer methods (aget_state, ...) inside the server's event loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._on_loop(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect():
            return [item async for item in self.alist(config, filter=filter, before=before, limit=limit)]

        return iter(self._on_loop(collect()))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._on_loop(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        return self._on_loop(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        return self._on_loop(self.adelete_thread(thread_id))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        return self._on_loop(self.acopy_thread(source_thread_id, target_thread_id))
