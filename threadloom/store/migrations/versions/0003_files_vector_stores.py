"""Files, vector stores, their files, file batches and searchable chunks

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Body = sa.JSON()  # not JSONB, which reorders keys


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("body", Body, nullable=False),
    )
    op.create_index("ix_files_purpose_seq", "files", ["purpose", "seq"])
    op.create_table(
        "file_parts",
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "vector_stores",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("embedding_model", sa.String(256), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("body", Body, nullable=False),
    )
    op.create_table(
        "vector_store_files",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("vector_store_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("usage_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("body", Body, nullable=False),
    )
    op.create_index("ux_vector_store_files_store_file", "vector_store_files", ["vector_store_id", "id"], unique=True)
    op.create_index("ix_vector_store_files_file", "vector_store_files", ["id"])
    op.create_index("ix_vector_store_files_status", "vector_store_files", ["status"])
    op.create_index("ix_vector_store_files_batch", "vector_store_files", ["batch_id", "seq"])
    op.create_table(
        "vector_store_file_batches",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("vector_store_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("body", Body, nullable=False),
    )
    op.create_table(
        "vector_store_chunks",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("vector_store_id", sa.String(64), nullable=False),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_vector_store_chunks_store_file", "vector_store_chunks", ["vector_store_id", "file_id", "position"]
    )


def downgrade() -> None:
    for table in ("vector_store_chunks", "vector_store_file_batches", "vector_store_files", "vector_stores", "file_parts", "files"):
        op.drop_table(table)
