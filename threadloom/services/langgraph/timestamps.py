"""LangGraph's timestamps: ISO 8601 with microseconds and a UTC offset."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
