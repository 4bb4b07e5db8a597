"""Scale-out figures on PostgreSQL + Redis, all measured in the same run:

1. Runs/s and p50 latency (closed loop, `--concurrency` clients) for one `serve` process,
   for 1 API replica (`serve --no-executor`) + 1 `threadloom worker`, and for 2 API + 2
   workers (clients spread over the replicas), with the CPU seconds all threadloom
   processes spent per run. On 2 cores the ratios show the cost of the split, not scaling.
2. Added latency of streaming a run through a replica that does not execute it: pairs of
   runs at concurrency 1, one through a single `serve` (it executes and streams its runs),
   one through an API replica whose worker executes them; p50 of each and of the per-pair
   difference (goal: <= 5 ms).
3. Time for a worker to take a new run: from the client receiving `thread.run.queued` to
   it receiving `thread.run.in_progress`, through the API replica (the worker is woken
   over Redis, reserves the run, starts it, and the event comes back over Redis) and, for
   comparison, through the single `serve` (goal: p50 <= 5 ms).

    python bench/scale_out.py [--concurrency 16] [--window 5] [--pairs 200]

The model is tests/scripted_upstream.py (instant answers): only threadloom's cost shows.
Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and the redis-server binary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import servers  # noqa: E402
from flows import OPENAI_HEADERS, PROMPT, SSEParser, threadloom_v1_run  # noqa: E402
from load import closed_loop, new_client, paired_sequence  # noqa: E402
from percentiles import summary_ms  # noqa: E402


class _SkipThroughput(Exception):
    pass


def start_redis(work: Path) -> tuple[subprocess.Popen, str]:
    port = servers.free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
            return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_api(work: Path, database: str, upstream: str, redis: str | None, label: str) -> servers.ServerProcess:
    port = servers.free_port()
    cmd = [sys.executable, "-m", "threadloom.cli", "serve", "--port", str(port), "--database", database,
           "--upstream", upstream, "--log-level", "warning"]
    if redis:
        cmd += ["--redis", redis, "--no-executor"]
    return servers.ServerProcess(label, cmd, port, "/healthz", work, cwd=servers.REPO).wait_ready(90)


def start_worker(work: Path, database: str, upstream: str, redis: str, label: str) -> servers.ServerProcess:
    cmd = [sys.executable, "-m", "threadloom.cli", "worker", "--database", database, "--upstream", upstream,
           "--redis", redis, "--log-level", "info"]
    worker = servers.ServerProcess(label, cmd, 0, "/", work, cwd=servers.REPO)
    deadline = time.monotonic() + 90
    while b"is taking runs" not in worker.log_path.read_bytes():
        if worker.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{label} did not start:\n{worker.log_tail()}")
        time.sleep(0.05)
    return worker


async def take_time(client: httpx.AsyncClient, base: str, assistant: str) -> float | None:
    """Seconds between the `queued` and `in_progress` events of one streamed run."""
    body = {"assistant_id": assistant, "stream": True, "thread": {"messages": [{"role": "user", "content": PROMPT}]}}
    parser = SSEParser()
    queued = taken = None
    async with client.stream("POST", base + "/v1/threads/runs", json=body, headers=OPENAI_HEADERS) as r:
        async for raw in r.aiter_raw():
            for event, _ in parser.feed(raw):
                if event == b"thread.run.queued":
                    queued = time.perf_counter()
                elif event == b"thread.run.in_progress" and queued is not None and taken is None:
                    taken = time.perf_counter() - queued
    return taken


async def assistant_on(base: str) -> str:
    async with httpx.AsyncClient() as c:
        r = await c.post(base + "/v1/assistants", json={"model": "bench-model"}, headers=OPENAI_HEADERS)
        return r.json()["id"]


async def throughput(apis: list[servers.ServerProcess], everyone: list[servers.ServerProcess], concurrency: int, window: float) -> dict:
    assistants = [await assistant_on(api.url) for api in apis]
    turn = [0]

    async def flow(client: httpx.AsyncClient):
        # Each client keeps to one replica (its connection), the replicas taking turns.
        k = getattr(client, "_replica", None)
        if k is None:
            k = client._replica = turn[0] % len(apis)
            turn[0] += 1
        return await threadloom_v1_run(client, apis[k].url, assistants[k])

    result = await closed_loop(flow, concurrency, window, server_cpu=lambda: sum(p.cpu_seconds() for p in everyone))
    out = result.as_dict()
    out["cpu_ms_per_run"] = round(1000 * result.server_cpu_s / max(1, result.completed), 2)
    return out


async def main_async(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    upstream = servers.start_upstream(work)
    up = upstream.url + "/v1"
    redis_proc, redis = start_redis(work)
    started: list[servers.ServerProcess] = []
    report: dict = {"concurrency": args.concurrency}
    try:
        def database(name: str) -> str:
            url = servers.create_postgres_database(name)
            if url is None:
                raise SystemExit("needs PostgreSQL on 127.0.0.1:5432")
            return url

        # 1. throughput of the three shapes, one after the other on fresh databases
        if args.latency_only:
            raise _SkipThroughput
        single = start_api(work, database("bench_scale_single"), up, None, "single")
        started.append(single)
        report["one serve"] = await throughput([single], [single], args.concurrency, args.window)
        single.stop()

        db = database("bench_scale_split")
        api = start_api(work, db, up, redis, "api-1")
        worker = start_worker(work, db, up, redis, "worker-1")
        started += [api, worker]
        report["1 API + 1 worker"] = await throughput([api], [api, worker], args.concurrency, args.window)
        api.stop()
        worker.stop()

        db = database("bench_scale_four")
        group = [start_api(work, db, up, redis, "api-a"), start_api(work, db, up, redis, "api-b"),
                 start_worker(work, db, up, redis, "worker-a"), start_worker(work, db, up, redis, "worker-b")]
        started += group
        report["2 API + 2 workers"] = await throughput(group[:2], group, args.concurrency, args.window)
        for p in group:
            p.stop()
    except _SkipThroughput:
        pass
    try:
        # 2. and 3.: a single serve against an API replica + worker, side by side
        single = start_api(work, database("bench_scale_single2"), up, None, "single-2")
        db = database("bench_scale_split2")
        api = start_api(work, db, up, redis, "api-2")
        worker = start_worker(work, db, up, redis, "worker-2")
        started += [single, api, worker]
        a_single, a_api = await assistant_on(single.url), await assistant_on(api.url)
        same, other = await paired_sequence(lambda c: threadloom_v1_run(c, single.url, a_single),
                                            lambda c: threadloom_v1_run(c, api.url, a_api), args.pairs)
        pairs = [(s, o) for s, o in zip(same, other) if s.error is None and o.error is None]
        report["streamed run, ms"] = {
            "executing replica (one serve)": summary_ms([s.latency for s, _ in pairs]),
            "replica that does not execute it (API + worker)": summary_ms([o.latency for _, o in pairs]),
            "difference per pair": summary_ms([o.latency - s.latency for s, o in pairs]),
        }
        takes: dict[str, list[float]] = {"worker over Redis": [], "one serve": []}
        c1, c2 = new_client(), new_client()
        try:
            for _ in range(args.pairs):
                for label, client, base, assistant in (("worker over Redis", c1, api.url, a_api), ("one serve", c2, single.url, a_single)):
                    seconds = await take_time(client, base, assistant)
                    if seconds is not None:
                        takes[label].append(seconds)
        finally:
            await c1.aclose()
            await c2.aclose()
        report["queued -> in_progress, ms"] = {k: summary_ms(v) for k, v in takes.items()}
    finally:
        for p in started:
            p.stop()
        upstream.stop()
        redis_proc.kill()
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput part")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
