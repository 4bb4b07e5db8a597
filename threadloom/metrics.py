"""The process's Prometheus metrics (prometheus-client), served at /metrics.

Counters are of this process: behind several replicas and workers, Prometheus sums them
over its targets (runs are counted where they end, model calls where they run)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # the *_created series say when the process started, 1 per label set

REQUESTS = Counter(
    "threadloom_requests", "HTTP requests answered, by route template, method and status", ["route", "method", "status"]
)
RUNS = Counter("threadloom_runs_finished", "Runs that reached a final status, by status", ["status"])
RUN_SECONDS = Histogram(
    "threadloom_run_duration_seconds", "Seconds from a run's creation to its final status",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
FIRST_TOKEN_SECONDS = Histogram(
    "threadloom_time_to_first_token_seconds", "Seconds from asking the model to its first text or tool-call chunk",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKENS = Counter("threadloom_tokens", "Tokens of finished runs, by kind (prompt, completion)", ["kind"])
ACTIVE_STREAMS = Gauge("threadloom_active_streams", "Event streams open to clients, both doors")
QUEUED_RUNS = Gauge("threadloom_queued_runs", "Runs queued in the store, waiting for an executor (read at each scrape)")
UPSTREAM_ERRORS = Counter(
    "threadloom_upstream_errors", "Failed calls to OpenAI-compatible model servers, retried ones included, by kind", ["kind"]
)
EMBEDDED_BUSY_SECONDS = Counter("threadloom_embedded_busy_seconds", "Seconds the embedded model spent generating")


def run_finished(run: dict, seconds: float) -> None:
    RUNS.labels(run["status"]).inc()
    RUN_SECONDS.observe(max(0.0, seconds))
    usage = run.get("usage")
    if usage:
        TOKENS.labels("prompt").inc(usage.get("prompt_tokens") or 0)
        TOKENS.labels("completion").inc(usage.get("completion_tokens") or 0)
