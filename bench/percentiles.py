"""Percentile summaries of timing samples (nearest-rank), in milliseconds."""

from __future__ import annotations

import math


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def summary_ms(values_s: list[float], ps=(50, 90, 99)) -> dict:
    """{"n", "p50", "p90", "p99", "mean"} in milliseconds, rounded to 0.01 ms."""
    vals = sorted(values_s)
    out: dict = {"n": len(vals)}
    for p in ps:
        v = percentile(vals, p)
        out[f"p{p}"] = None if v is None else round(v * 1000, 2)
    out["mean"] = round(sum(vals) / len(vals) * 1000, 2) if vals else None
    return out
