"""Profile threadloom under one bench load with py-spy, and print where its time goes.

    python bench/profile_server.py [--scenario runs|langgraph|relay|held] [--concurrency 64] [--seconds 8]
                                   [--database sqlite|postgresql] [--gil] [--out DIR]

Starts the scripted upstream and threadloom (as bench/run.py does), drives the chosen load,
samples the server with `py-spy record` meanwhile, and prints the server's CPU use, the
throughput, and the hottest functions (cumulative and self, line numbers folded). py-spy is
installed on first use into bench/.tools (never a dependency of threadloom). The raw
samples stay in DIR (py-spy's "raw" collapsed-stack format, for flamegraph tools).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import flows  # noqa: E402
import servers  # noqa: E402
from load import closed_loop, new_client  # noqa: E402
from run import create_assistant, raise_fd_limit, script  # noqa: E402

TOOLS = HERE / ".tools"


def ensure_py_spy() -> Path:
    exe = TOOLS / "bin" / "py-spy"
    if not exe.exists():
        print("[profile] installing py-spy into bench/.tools", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--target", str(TOOLS), "py-spy==0.4.3"], check=True)
    return exe


def summarize(raw: Path, top: int = 40, possible: float | None = None) -> str:
    """`possible`: samples one always-busy thread would give (rate x seconds), to show how
    busy each thread was (needs py-spy --threads)."""
    cum: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, n = line.rsplit(" ", 1)
        count = int(n)
        frames = [re.sub(r":\d+\)", ")", f) for f in stack.split(";")]
        if frames[0].startswith("thread ") or frames[0].startswith("process "):
            # py-spy --threads: the first frame names the thread; tell threads apart by their entry point.
            entry = next((f for f in frames[1:] if "threadloom/cli.py" in f or "_worker (" in f or "_bootstrap" not in f), "")
            threads[f"{frames[0][:40]} {entry[:60]}"] += count
            frames = frames[1:]
        if not frames:
            continue
        total += count
        for f in set(frames):
            cum[f] += count
        own[frames[-1]] += count
    out = [f"{total} samples (idle samples excluded)"]
    if threads:
        out.append("-- threads (share of the time each was busy)" if possible else "-- threads")
        for k, v in threads.most_common(12):
            out.append(f"{100 * v / possible:5.1f}%  {k}" if possible else f"{v:6d}  {k}")
    out.append("-- cumulative (share of samples with the function on the stack)")
    out += [f"{100 * v / total:5.1f}%  {k[:150]}" for k, v in cum.most_common(top)]
    out.append("-- self (share of samples with the function on top)")
    out += [f"{100 * v / total:5.1f}%  {k[:150]}" for k, v in own.most_common(top // 2)]
    return "\n".join(out)


async def drive(args, tl: servers.ServerProcess, upstream: servers.ServerProcess) -> str:
    asst = await create_assistant(tl.url)
    if args.scenario == "runs":
        r = await closed_loop(lambda c: flows.threadloom_v1_run(c, tl.url, asst), args.concurrency, args.seconds,
                              warmup_s=0.5, server_cpu=tl.cpu_seconds)
        return (f"{r.runs_per_s:.1f} runs/s at c={r.concurrency}, errors {r.errors}, latency {r.latency_ms}, "
                f"server CPU {r.server_cpu_s:.2f} s in {r.window_s:.2f} s, client CPU {r.client_cpu_s:.2f} s")
    if args.scenario == "langgraph":
        r = await closed_loop(lambda c: flows.langgraph_run(c, tl.url, "agent"), args.concurrency, args.seconds,
                              warmup_s=0.5, server_cpu=tl.cpu_seconds)
        return (f"{r.runs_per_s:.1f} runs/s at c={r.concurrency}, errors {r.errors}, latency {r.latency_ms}, "
                f"server CPU {r.server_cpu_s:.2f} s in {r.window_s:.2f} s, client CPU {r.client_cpu_s:.2f} s")
    if args.scenario == "relay":
        n = int(args.seconds * 40_000)
        await script(upstream.url, [{"text": "tok ", "repeat": n}], model="bench-relay")
        async with new_client(600) as c:
            t = await flows.threadloom_v1_run(c, tl.url, asst, model="bench-relay")
        return f"{t.deltas} deltas in {t.latency:.2f} s: {t.deltas / max(1e-9, t.latency - (t.ttft or 0)):.0f} deltas/s {t.error or ''}"
    n = args.concurrency
    await script(upstream.url, [{"text": "x", "repeat": int(args.seconds * 4), "delay": 0.25}] * n, model="bench-held")
    clients = [new_client(600) for _ in range(n)]
    try:
        res = await asyncio.gather(*(flows.threadloom_v1_run(c, tl.url, asst, model="bench-held") for c in clients),
                                   return_exceptions=True)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    bad = [r for r in res if isinstance(r, BaseException) or r.error]
    return f"{n} held streams, {len(bad)} failed, peak RSS see above"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=("runs", "langgraph", "relay", "held"), default="runs",
                   help="runs: /v1 thread+run streams; langgraph: the LangGraph door (POST /threads + runs/stream)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--gil", action="store_true", help="only samples that hold the GIL (py-spy --gil)")
    p.add_argument("--rate", type=int, default=200, help="samples per second")
    p.add_argument("--threads", action="store_true", help="tell threads apart (how busy is each?)")
    p.add_argument("--idle", action="store_true", help="keep idle samples too (where do threads wait?)")
    p.add_argument("--out", default=None, help="folder for the raw profile and logs")
    args = p.parse_args()
    raise_fd_limit()
    py_spy = ensure_py_spy()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="threadloom-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    upstream = servers.start_upstream(out)
    pg_name = None
    try:
        if args.database == "postgresql":
            pg_name = f"threadloom_profile_{os.getpid()}"
            db = servers.create_postgres_database(pg_name)
            if db is None:
                raise SystemExit("no PostgreSQL on 127.0.0.1:5432")
        else:
            db = f"sqlite:///{out / 'profile.db'}"
        tl = servers.start_threadloom(out, db, upstream.url + "/v1", args.database)
        try:
            raw = out / f"{args.scenario}-c{args.concurrency}.raw"
            cmd = [str(py_spy), "record", "-p", str(tl.proc.pid), "-r", str(args.rate), "-d",
                   str(max(1, int(args.seconds))), "-f", "raw", "-o", str(raw), "--nonblocking"]
            if args.gil:
                cmd.append("--gil")
            if args.threads:
                cmd.append("--threads")
            if args.idle:
                cmd.append("--idle")
            cpu0, t0 = tl.cpu_seconds(), time.perf_counter()
            spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            import uvloop

            outcome = uvloop.run(drive(args, tl, upstream))
            spy.wait(timeout=120)
            wall = time.perf_counter() - t0
            cpu = tl.cpu_seconds() - cpu0
            print(f"{args.scenario}: {outcome}")
            print(f"server: {cpu:.2f} CPU s in {wall:.2f} s wall ({100 * cpu / wall:.0f}% of one core), "
                  f"RSS now {tl.rss_bytes() / 2**20:.0f} MB")
            if raw.exists():
                print(summarize(raw, possible=args.rate * max(1, int(args.seconds))))
                print(f"raw samples: {raw}")
            else:
                print("py-spy wrote nothing:", spy.stderr.read().decode()[-500:])
        finally:
            tl.stop()
    finally:
        upstream.stop()
        if pg_name:
            servers.drop_postgres_database(pg_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
