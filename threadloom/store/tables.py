"""The schema. Each object keeps its wire form in `body` (what GET returns, written in the
same transaction as every state change) beside the columns that queries, ordering and
run leases need.

`seq` is the insertion order: lists order by it (ids are random and created_at has only
one-second resolution).
"""

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

# The project of the API key that created the object (store/projects.py).
def _project() -> Column:
    return Column("project", String(64), nullable=False, server_default="default")


# INTEGER PRIMARY KEY is SQLite's rowid (autoincrement); BIGINT identity on PostgreSQL.
Seq = BigInteger().with_variant(Integer(), "sqlite")
# JSON, not JSONB: JSONB reorders object keys, and a body must come back as it was
# written (the property order of a function's parameters is what the model is shown).
Body = JSON()

assistants = Table(
    "assistants",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    _project(),
    Column("id", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("graph_id", String(128), nullable=True),  # LangGraph door: which graph it runs
    Column("body", Body, nullable=False),
    Column("extra", Body, nullable=True),  # LangGraph door: config, context, metadata, version
)

threads = Table(
    "threads",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    _project(),
    Column("id", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("body", Body, nullable=False),
    Column("extra", Body, nullable=True),  # LangGraph door: status, values, config
)

messages = Table(
    "messages",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("thread_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Nanosecond clock at insertion: interleaves messages and tool-call steps when the
    # engine rebuilds a thread's history for the model.
    Column("ordinal", BigInteger, nullable=False),
    Column("body", Body, nullable=False),
    Index("ix_messages_thread_seq", "thread_id", "seq"),
)

runs = Table(
    "runs",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("thread_id", String(64), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # Executor lease: which process runs it and until when its claim holds.
    Column("owner", String(128), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("attempt", Integer, nullable=False, default=0),
    Column("body", Body, nullable=False),
    # Engine state that is not part of the wire object: the effective request
    # (additional_instructions, budgets used so far, ...).
    Column("state", Body, nullable=False),
    Index("ix_runs_thread_seq", "thread_id", "seq"),
    Index("ix_runs_status", "status"),
)

run_steps = Table(
    "run_steps",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("run_id", String(64), nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("ordinal", BigInteger, nullable=False),
    Column("body", Body, nullable=False),
    Index("ix_run_steps_run_seq", "run_id", "seq"),
    Index("ix_run_steps_thread", "thread_id", "run_id", "seq"),
)

# LangGraph door: one row per Agent Server run, mapped onto the engine run that executes
# it (several LangGraph runs can share one: a resume continues the interrupted engine run).
# `status` is set when the door settles a run itself; unset, it is read from the engine run.
langgraph_runs = Table(
    "langgraph_runs",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    _project(),
    Column("id", String(64), nullable=False, unique=True),
    Column("thread_id", String(64), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("engine_run_id", String(64), nullable=True),
    Column("status", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Body, nullable=False),
    # A user graph's run executes in the process that holds it, which stamps `alive_at`
    # (seconds) while it waits or runs: a stale stamp means that process is gone.
    Column("alive_at", BigInteger, nullable=True),
    Index("ix_langgraph_runs_thread_seq", "thread_id", "seq"),
    Index("ix_langgraph_runs_engine_run", "engine_run_id"),
)

# -- files, vector stores and their chunks -----------------------------------

files = Table(
    "files",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    _project(),
    Column("id", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("body", Body, nullable=False),
    Index("ix_files_purpose_seq", "purpose", "seq"),
)

# A file's bytes, in parts: every server sharing the database can serve any file, and
# neither an upload nor a download holds a whole large file in one value.
file_parts = Table(
    "file_parts",
    metadata,
    Column("file_id", String(64), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

vector_stores = Table(
    "vector_stores",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    _project(),
    Column("id", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # The embedding model its chunks were embedded with: a search embeds its query with
    # the same one, or is refused.
    Column("embedding_model", String(256), nullable=False),
    # Bumped by every change to its chunks: a server's in-memory index of the store is
    # current while the versions agree (several servers may share the database).
    Column("version", BigInteger, nullable=False, default=0),
    Column("body", Body, nullable=False),
)

# One row per (store, file). `id` is the file id, as on the wire; the durable queue of
# ingestion is the rows `in_progress`, claimed with a lease like runs.
vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False),
    Column("vector_store_id", String(64), nullable=False),
    Column("batch_id", String(64), nullable=True),
    Column("status", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("owner", String(128), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("usage_bytes", BigInteger, nullable=False, default=0),
    Column("body", Body, nullable=False),
    Index("ux_vector_store_files_store_file", "vector_store_id", "id", unique=True),
    Index("ix_vector_store_files_file", "id"),
    Index("ix_vector_store_files_status", "status"),
    Index("ix_vector_store_files_batch", "batch_id", "seq"),
)

vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("vector_store_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Body, nullable=False),
)

# The searchable pieces of a store's files: text and its embedding (float32, unit length).
vector_store_chunks = Table(
    "vector_store_chunks",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("vector_store_id", String(64), nullable=False),
    Column("file_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Index("ix_vector_store_chunks_store_file", "vector_store_id", "file_id", "position"),
)

for _table in (assistants, threads, files, vector_stores, langgraph_runs):
    Index(f"ix_{_table.name}_project_seq", _table.c.project, _table.c.seq)

# -- the user's LangGraph graphs (langgraph.json) ------------------------------
# Checkpoints as LangGraph's checkpointers keep them: one row per checkpoint of a thread
# (per namespace: a subgraph checkpoints under its own), serialized by the graph's serde;
# `metadata` is the checkpoint's metadata as JSON, for history filters.
graph_checkpoints = Table(
    "graph_checkpoints",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("thread_id", String(64), nullable=False),
    Column("checkpoint_ns", String(512), nullable=False, server_default=""),
    Column("checkpoint_id", String(64), nullable=False),
    Column("parent_checkpoint_id", String(64), nullable=True),
    Column("type", String(32), nullable=False),
    Column("checkpoint", LargeBinary, nullable=False),
    Column("metadata", Body, nullable=False),
    Index("ux_graph_checkpoints", "thread_id", "checkpoint_ns", "checkpoint_id", unique=True),
)

# A LangGraph thread's time to live (threads.create/update `ttl`, langgraph.json's
# checkpointer.ttl): at `expires_at` (epoch seconds) the thread is deleted, or pruned to
# its latest checkpoint and given another `minutes`.
thread_ttls = Table(
    "thread_ttls",
    metadata,
    Column("thread_id", String(64), primary_key=True),
    _project(),
    Column("strategy", String(16), nullable=False),
    Column("minutes", Float, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_thread_ttls_expires_at", "expires_at"),
)

# Writes of a superstep's tasks, kept until the superstep's checkpoint (what a node wrote
# before an interrupt or a failure, so the resume does not run it twice).
graph_checkpoint_writes = Table(
    "graph_checkpoint_writes",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("thread_id", String(64), nullable=False),
    Column("checkpoint_ns", String(512), nullable=False, server_default=""),
    Column("checkpoint_id", String(64), nullable=False),
    Column("task_id", String(64), nullable=False),
    Column("task_path", String(1024), nullable=False, server_default=""),
    Column("idx", Integer, nullable=False),
    Column("channel", String(256), nullable=False),
    Column("type", String(32), nullable=True),
    Column("value", LargeBinary, nullable=True),
    Index("ux_graph_checkpoint_writes", "thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx", unique=True),
)

# The LangGraph /store: JSON documents under a namespace (its labels joined by "."; a
# label cannot hold a dot), shared by the API and by graphs as their store.
graph_store_items = Table(
    "graph_store_items",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    _project(),
    Column("namespace", String(1024), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("value", Body, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # microseconds since the epoch
    Column("updated_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),  # TTL: microseconds, None for never
    Column("ttl_us", BigInteger, nullable=True),  # the TTL itself, for reads that refresh it
    # With a vector index (langgraph.json's store.index): the indexed fields' unit vectors,
    # float32, one after the other.
    Column("embedding", LargeBinary, nullable=True),
    Index("ux_graph_store_items", "project", "namespace", "key", unique=True),
)

# Crons: a run created on schedule. `next_run_at` (seconds) is what every server's
# scheduler claims with a conditional update, so one firing is taken by one server.
crons = Table(
    "crons",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    _project(),
    Column("id", String(64), nullable=False, unique=True),
    Column("assistant_id", String(64), nullable=False),
    Column("thread_id", String(64), nullable=True),
    Column("schedule", String(256), nullable=False),
    Column("next_run_at", BigInteger, nullable=True),  # None: it ended
    Column("end_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("body", Body, nullable=False),  # the wire cron (payload, metadata, user_id, ...)
    Index("ix_crons_next_run_at", "next_run_at"),
)
