"""Projects: the project of the API key that created each assistant, thread, file, vector
store and LangGraph run (objects made before keys had projects belong to `default`)

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("assistants", "threads", "files", "vector_stores", "langgraph_runs")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("project", sa.String(64), nullable=False, server_default="default"))
        op.create_index(f"ix_{table}_project_seq", table, ["project", "seq"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_project_seq", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("project")
