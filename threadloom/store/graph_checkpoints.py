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
from sqlalchemy import Connection, and_, delete, insert, select, update

from threadloom.store import tables
from threadloom.store.database import Database

C, W = tables.graph_checkpoints, tables.graph_checkpoint_writes


def _json_safe(value) -> dict:
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def _metadata_filter(conn: Connection, subset: dict):
    """Checkpoint metadata equal to `subset` on each of its keys, in SQL."""
    conditions = []
    for key, value in subset.items():
        element = C.c.metadata[key]
        if value is None:
            conditions.append(element.as_string().is_(None))
        elif isinstance(value, bool):
            conditions.append(element.as_boolean() == value)
        elif isinstance(value, (int, float)):
            conditions.append(element.as_float() == value)
        elif isinstance(value, str):
            conditions.append(element.as_string() == value)
        else:  # objects and lists: compare the JSON text
            return None
    return and_(*conditions)


class DatabaseCheckpointSaver(BaseCheckpointSaver[str]):
    def __init__(self, db: Database):
        super().__init__()
        self.db = db
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- reading ------------------------------------------------------------------------------

    def _tuple(self, conn: Connection, row) -> CheckpointTuple:
        thread_id, ns, checkpoint_id, parent_id, kind, blob, metadata = row
        writes = conn.execute(
            select(W.c.task_id, W.c.channel, W.c.type, W.c.value)
            .where(W.c.thread_id == thread_id, W.c.checkpoint_ns == ns, W.c.checkpoint_id == checkpoint_id)
            .order_by(W.c.task_path, W.c.task_id, W.c.idx)
        ).all()
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
        parent = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}} if parent_id else None
        return CheckpointTuple(
            config=config,
            checkpoint=self.serde.loads_typed((kind, blob)),
            metadata=metadata,
            parent_config=parent,
            pending_writes=[(task_id, channel, self.serde.loads_typed((t, v))) for task_id, channel, t, v in writes],
        )

    _COLUMNS = (C.c.thread_id, C.c.checkpoint_ns, C.c.checkpoint_id, C.c.parent_checkpoint_id, C.c.type,
                C.c.checkpoint, C.c.metadata)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._loop = asyncio.get_running_loop()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)

        def read(conn):
            stmt = select(*self._COLUMNS).where(C.c.thread_id == thread_id, C.c.checkpoint_ns == ns)
            if checkpoint_id:
                stmt = stmt.where(C.c.checkpoint_id == checkpoint_id)
            else:
                stmt = stmt.order_by(C.c.checkpoint_id.desc()).limit(1)
            row = conn.execute(stmt).first()
            return self._tuple(conn, row) if row else None

        return await self.db.query(read)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        """Newest first (checkpoint ids are time-ordered UUIDv6)."""
        self._loop = asyncio.get_running_loop()

        def read(conn):
            stmt = select(*self._COLUMNS)
            if config is not None:
                configurable = config["configurable"]
                stmt = stmt.where(C.c.thread_id == str(configurable["thread_id"]))
                if configurable.get("checkpoint_ns") is not None:
                    stmt = stmt.where(C.c.checkpoint_ns == configurable["checkpoint_ns"])
                if get_checkpoint_id(config):
                    stmt = stmt.where(C.c.checkpoint_id == get_checkpoint_id(config))
            if before is not None and get_checkpoint_id(before):
                stmt = stmt.where(C.c.checkpoint_id < get_checkpoint_id(before))
            exact = True
            if filter:
                condition = _metadata_filter(conn, filter)
                if condition is None:
                    exact = False  # a filter SQL cannot say: applied below, so no SQL limit
                else:
                    stmt = stmt.where(condition)
            stmt = stmt.order_by(C.c.checkpoint_id.desc())
            if limit and exact:
                stmt = stmt.limit(limit)
            out = []
            for row in conn.execute(stmt).all():
                if not exact and any(row[6].get(k) != v for k, v in filter.items()):
                    continue
                out.append(self._tuple(conn, row))
                if limit and len(out) >= limit:
                    break
            return out

        for item in await self.db.query(read):
            yield item

    # -- writing ------------------------------------------------------------------------------

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        self._loop = asyncio.get_running_loop()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        kind, blob = self.serde.dumps_typed(checkpoint)
        values = {
            "thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": configurable.get("checkpoint_id"), "type": kind, "checkpoint": blob,
            "metadata": _json_safe(get_serializable_checkpoint_metadata(config, metadata)),
        }

        def write(conn):
            key = and_(C.c.thread_id == thread_id, C.c.checkpoint_ns == ns, C.c.checkpoint_id == checkpoint["id"])
            if conn.execute(select(C.c.seq).where(key)).first() is None:
                conn.execute(insert(C), values)
            else:
                conn.execute(update(C).where(key).values(**values))

        await self.db.transact(write)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        self._loop = asyncio.get_running_loop()
        configurable = config["configurable"]
        thread_id, ns = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        checkpoint_id = configurable["checkpoint_id"]
        rows = []
        for index, (channel, value) in enumerate(writes):
            kind, blob = self.serde.dumps_typed(value)
            rows.append({"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id, "task_id": task_id,
                         "task_path": task_path, "idx": WRITES_IDX_MAP.get(channel, index), "channel": channel,
                         "type": kind, "value": blob})

        def write(conn):
            for row in rows:
                key = and_(W.c.thread_id == thread_id, W.c.checkpoint_ns == ns, W.c.checkpoint_id == checkpoint_id,
                           W.c.task_id == task_id, W.c.idx == row["idx"])
                exists = conn.execute(select(W.c.seq).where(key)).first() is not None
                if not exists:
                    conn.execute(insert(W), row)
                elif row["idx"] < 0:  # special channels (error, interrupt, resume) are replaced
                    conn.execute(update(W).where(key).values(**row))

        await self.db.transact(write)

    async def adelete_thread(self, thread_id: str) -> None:
        def remove(conn):
            for table in (W, C):
                conn.execute(delete(table).where(table.c.thread_id == str(thread_id)))

        await self.db.transact(remove)

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

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        async def collect():
            return [item async for item in self.alist(config, filter=filter, before=before, limit=limit)]

        return iter(self._on_loop(collect()))

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        return self._on_loop(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        return self._on_loop(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        return self._on_loop(self.adelete_thread(thread_id))
