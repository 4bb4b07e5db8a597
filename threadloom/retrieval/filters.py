"""Attribute filters of vector store searches (ComparisonFilter / CompoundFilter)."""

from __future__ import annotations

from threadloom.domain.vector_store import ComparisonFilter, CompoundFilter


def _compare(op: str, have, want) -> bool:
    if op in ("in", "nin"):
        found = have in want if isinstance(want, list) else have == want
        return found if op == "in" else not found
    if op == "eq":
        return have == want
    if op == "ne":
        return have != want
    # Order comparisons hold between numbers, or between strings; never across types.
    if isinstance(have, bool) or isinstance(want, bool):
        return False
    numbers = isinstance(have, (int, float)) and isinstance(want, (int, float))
    if not numbers and not (isinstance(have, str) and isinstance(want, str)):
        return False
    return {"gt": have > want, "gte": have >= want, "lt": have < want, "lte": have <= want}[op]


def matches(spec: ComparisonFilter | CompoundFilter | None, attributes: dict) -> bool:
    if spec is None:
        return True
    if isinstance(spec, CompoundFilter):
        results = (matches(f, attributes) for f in spec.filters)
        return all(results) if spec.type == "and" else any(results)
    if spec.key not in attributes:
        return spec.type in ("ne", "nin")  # an absent attribute differs from every value
    return _compare(spec.type, attributes[spec.key], spec.value)
