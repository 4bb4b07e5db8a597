"""The user's LangGraph graphs: checkpoints and their pending writes, the /store items,
crons, and the liveness stamp of a graph run's process

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _seq() -> sa.Column:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


def _project() -> sa.Column:
    return sa.Column("project", sa.String(64), nullable=False, server_default="default")


def upgrade() -> None:
    with op.batch_alter_table("langgraph_runs") as batch:
        batch.add_column(sa.Column("alive_at", sa.BigInteger, nullable=True))
    op.create_table(
        "graph_checkpoints",
        _seq(),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("checkpoint_ns", sa.String(512), nullable=False, server_default=""),
        sa.Column("checkpoint_id", sa.String(64), nullable=False),
        sa.Column("parent_checkpoint_id", sa.String(64), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
    )
    op.create_index("ux_graph_checkpoints", "graph_checkpoints", ["thread_id", "checkpoint_ns", "checkpoint_id"], unique=True)
    op.create_table(
        "graph_checkpoint_writes",
        _seq(),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("checkpoint_ns", sa.String(512), nullable=False, server_default=""),
        sa.Column("checkpoint_id", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("task_path", sa.String(1024), nullable=False, server_default=""),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(256), nullable=False),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=True),
    )
    op.create_index("ux_graph_checkpoint_writes", "graph_checkpoint_writes",
                    ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"], unique=True)
    op.create_table(
        "graph_store_items",
        _seq(),
        _project(),
        sa.Column("namespace", sa.String(1024), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("ttl_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ux_graph_store_items", "graph_store_items", ["project", "namespace", "key"], unique=True)
    op.create_table(
        "crons",
        _seq(),
        _project(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=True),
        sa.Column("schedule", sa.String(256), nullable=False),
        sa.Column("next_run_at", sa.BigInteger, nullable=True),
        sa.Column("end_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_crons_next_run_at", "crons", ["next_run_at"])


def downgrade() -> None:
    with op.batch_alter_table("langgraph_runs") as batch:
        batch.drop_column("alive_at")
    for table in ("crons", "graph_store_items", "graph_checkpoint_writes", "graph_checkpoints"):
        op.drop_table(table)
