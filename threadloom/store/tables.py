"""The schema. Each object keeps its wire form in `body` (what GET returns, written in the
same transaction as every state change) beside the columns that queries, ordering and
run leases need.

`seq` is the insertion order: lists order by it (ids are random and created_at has only
one-second resolution).
"""

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table

metadata = MetaData()

# INTEGER PRIMARY KEY is SQLite's rowid (autoincrement); BIGINT identity on PostgreSQL.
Seq = BigInteger().with_variant(Integer(), "sqlite")
# JSON, not JSONB: JSONB reorders object keys, and a body must come back as it was
# written (the property order of a function's parameters is what the model is shown).
Body = JSON()

assistants = Table(
    "assistants",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
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
    Column("id", String(64), nullable=False, unique=True),
    Column("thread_id", String(64), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("engine_run_id", String(64), nullable=True),
    Column("status", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Body, nullable=False),
    Index("ix_langgraph_runs_thread_seq", "thread_id", "seq"),
    Index("ix_langgraph_runs_engine_run", "engine_run_id"),
)
