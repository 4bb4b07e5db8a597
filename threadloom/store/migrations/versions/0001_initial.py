"""assistants, threads, messages, runs and run steps

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Body = sa.JSON()  # not JSONB, which reorders keys


def _object_table(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        *columns,
        sa.Column("body", Body, nullable=False),
    )


def upgrade() -> None:
    _object_table("assistants", sa.Column("graph_id", sa.String(128), nullable=True))
    _object_table(
        "threads",
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("extra", Body, nullable=True),
    )
    _object_table(
        "messages",
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("ordinal", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_messages_thread_seq", "messages", ["thread_id", "seq"])
    _object_table(
        "runs",
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", Body, nullable=False),
    )
    op.create_index("ix_runs_thread_seq", "runs", ["thread_id", "seq"])
    op.create_index("ix_runs_status", "runs", ["status"])
    _object_table(
        "run_steps",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("ordinal", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_run_steps_run_seq", "run_steps", ["run_id", "seq"])
    op.create_index("ix_run_steps_thread", "run_steps", ["thread_id"])


def downgrade() -> None:
    for name in ("run_steps", "runs", "messages", "threads", "assistants"):
        op.drop_table(name)
