"""A page of a LangGraph search as its routes return it: the objects (cut to the fields
`select` names), how many matched, and the offset of the next page (None at the end)."""

from __future__ import annotations


def selected(items: list[dict], select: list[str] | None) -> list[dict]:
    if not select:
        return items
    return [{k: item[k] for k in select if k in item} for item in items]


def search_page(items: list[dict], select: list[str] | None, total: int, offset: int,
                limit: int) -> tuple[list[dict], int, int | None]:
    following = offset + limit
    return selected(items, select), total, following if following < total else None
