"""Alembic migrations of the threadloom schema."""
