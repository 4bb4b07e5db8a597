"""The load generator: closed-loop workers, each with its own httpx client.

A worker sends one run, waits for its stream to end, and sends the next, until the
window closes; throughput counts the runs that finished inside the window. Each worker
owns an httpx.AsyncClient with one connection: a pool shared by hundreds of workers
costs the client more CPU per request than the server it measures.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import httpx

from flows import RunTiming
from percentiles import summary_ms
from servers import machine_cpu

Flow = Callable[[httpx.AsyncClient], Awaitable[RunTiming]]


# Loopback HTTP only; one context for all clients (httpx builds one per client otherwise,
# ~20 ms each: 1,000 clients would stall the load generator for 20 s).
_TLS = ssl.create_default_context()


def new_client(timeout: float = 120.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=_TLS,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=httpx.Timeout(timeout, connect=30.0),
    )


async def guarded(flow: Flow, client: httpx.AsyncClient) -> RunTiming:
    t0 = time.perf_counter()
    try:
        return await flow(client)
    except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
        end = time.perf_counter()
        return RunTiming(latency=end - t0, end=end, error=f"{type(exc).__name__}: {exc}"[:200])


@dataclass
class LoadResult:
    concurrency: int
    window_s: float
    completed: int
    errors: int
    runs_per_s: float
    latency_ms: dict
    ttft_ms: dict
    client_cpu_s: float
    server_cpu_s: float | None = None
    machine_busy_cores: float | None = None  # all processes on the machine, ours and others'
    error_samples: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "concurrency": self.concurrency, "window_s": round(self.window_s, 2), "completed": self.completed,
            "errors": self.errors, "runs_per_s": round(self.runs_per_s, 1), "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms, "client_cpu_s": round(self.client_cpu_s, 2),
            "server_cpu_s": None if self.server_cpu_s is None else round(self.server_cpu_s, 2),
            "server_cores": None if self.server_cpu_s is None else round(self.server_cpu_s / self.window_s, 2),
            "client_cores": round(self.client_cpu_s / self.window_s, 2),
            "machine_busy_cores": None if self.machine_busy_cores is None else round(self.machine_busy_cores, 2),
            "error_samples": self.error_samples[:5],
        }


async def closed_loop(flow: Flow, concurrency: int, window_s: float, warmup_s: float = 0.5,
                      drain_timeout_s: float = 60.0, server_cpu: Callable[[], float] | None = None,
                      max_phase_s: float = 60.0, drain: bool = True) -> LoadResult:
    """Warm up until `warmup_s` passed and `concurrency` runs finished (every worker past its
    first run), then measure for `window_s` or until `concurrency` more runs finished,
    whichever is later (each phase capped at `max_phase_s`), so slow servers at high
    concurrency still get a steady-state window. With drain=False the runs still open when
    the window closes are abandoned (the server is stopped next) instead of awaited."""
    clients = [new_client() for _ in range(concurrency)]
    results: list[RunTiming] = []
    finished = [0]
    phase = {"record": False, "stop": False}

    async def worker(client: httpx.AsyncClient) -> None:
        while not phase["stop"]:
            t = await guarded(flow, client)
            finished[0] += 1
            if phase["record"]:
                results.append(t)

    async def wait_phase(min_s: float, min_runs: int) -> None:
        t0 = time.perf_counter()
        base = finished[0]
        while True:
            await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - t0
            if elapsed >= max_phase_s or (elapsed >= min_s and finished[0] - base >= min_runs):
                return

    tasks = [asyncio.ensure_future(worker(c)) for c in clients]
    pending: set = set()
    try:
        await wait_phase(warmup_s, concurrency)
        cpu0 = server_cpu() if server_cpu else None
        c0 = time.process_time()
        m0 = machine_cpu()
        phase["record"] = True
        start = time.perf_counter()
        await wait_phase(window_s, concurrency)
        deadline = time.perf_counter()
        phase["stop"] = True
        client_cpu = time.process_time() - c0
        cpu1 = server_cpu() if server_cpu else None
        m1 = machine_cpu()
        done, pending = await asyncio.wait(tasks, timeout=drain_timeout_s if drain else 0.01)
        for p in pending:
            p.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)
        if not drain:
            pending = set()
    finally:
        phase["stop"] = True
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    # A run counts toward throughput when it ended inside the window; errors count wherever they fell.
    in_window = [r for r in results if r.end <= deadline and r.error is None]
    errors = [r for r in results if r.error is not None]
    errors += [RunTiming(error="still running after the drain timeout")] * len(pending)
    window = deadline - start
    return LoadResult(
        concurrency=concurrency,
        window_s=window,
        completed=len(in_window),
        errors=len(errors),
        runs_per_s=len(in_window) / window,
        latency_ms=summary_ms([r.latency for r in in_window]),
        ttft_ms=summary_ms([r.ttft for r in in_window if r.ttft is not None]),
        client_cpu_s=client_cpu,
        server_cpu_s=None if cpu0 is None else cpu1 - cpu0,
        machine_busy_cores=(m1[0] - m0[0]) / window,
        error_samples=sorted({r.error for r in errors}),
    )


async def paired_sequence(flow_a: Flow, flow_b: Flow, n: int, warmup: int = 20) -> tuple[list[RunTiming], list[RunTiming]]:
    """Concurrency 1: a, b, a, b, ... n pairs, each door on its own warm connection, so
    drift on the machine falls on both alike."""
    ca, cb = new_client(), new_client()
    try:
        for _ in range(warmup):
            await guarded(flow_a, ca)
            await guarded(flow_b, cb)
        a, b = [], []
        for _ in range(n):
            a.append(await guarded(flow_a, ca))
            b.append(await guarded(flow_b, cb))
        return a, b
    finally:
        await ca.aclose()
        await cb.aclose()
