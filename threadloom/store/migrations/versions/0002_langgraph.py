"""LangGraph door: runs of the Agent Server API, and an `extra` column on assistants

A LangGraph run maps onto one engine run (`engine_run_id`); several LangGraph runs can
share one engine run (a run that resumes a tool-call interrupt continues the engine run
the interrupted one started). `status` holds a final status the door settled itself; an
unset status is read from the engine run. `assistants.extra` keeps what the LangGraph
door knows of an assistant beyond OpenAI's object (config, context, metadata, version).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Body = sa.JSON()  # not JSONB, which reorders keys


def upgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("extra", Body, nullable=True))
    op.create_table(
        "langgraph_runs",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("engine_run_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("body", Body, nullable=False),
    )
    op.create_index("ix_langgraph_runs_thread_seq", "langgraph_runs", ["thread_id", "seq"])
    op.create_index("ix_langgraph_runs_engine_run", "langgraph_runs", ["engine_run_id"])


def downgrade() -> None:
    op.drop_table("langgraph_runs")
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("extra")
