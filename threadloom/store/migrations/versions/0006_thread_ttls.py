"""A LangGraph thread's time to live (threads.create/update `ttl`, langgraph.json's
checkpointer.ttl); the store items' vectors (langgraph.json's store.index); the run steps'
thread index as the schema declares it (0001 made it on thread_id alone)

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thread_ttls",
        sa.Column("thread_id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(64), nullable=False, server_default="default"),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("minutes", sa.Float, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_thread_ttls_expires_at", "thread_ttls", ["expires_at"])
    with op.batch_alter_table("graph_store_items") as batch:
        batch.add_column(sa.Column("embedding", sa.LargeBinary, nullable=True))
    op.drop_index("ix_run_steps_thread", table_name="run_steps")
    op.create_index("ix_run_steps_thread", "run_steps", ["thread_id", "run_id", "seq"])


def downgrade() -> None:
    with op.batch_alter_table("graph_store_items") as batch:
        batch.drop_column("embedding")
    op.drop_index("ix_run_steps_thread", table_name="run_steps")
    op.create_index("ix_run_steps_thread", "run_steps", ["thread_id"])
    op.drop_table("thread_ttls")
