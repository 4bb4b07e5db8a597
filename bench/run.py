"""threadloom's benchmark: the one command.

    python bench/run.py [--quick] [--out bench/results/latest.json] [--no-peer] [--no-postgres]

Starts on loopback ports: the scripted upstream (tests/scripted_upstream.py) as the model,
threadloom on SQLite and on PostgreSQL, and LangGraph's in-memory Agent Server as the peer
(installed on first use into bench/.peer-venv). Measures per-run added latency, time to first
delta, throughput at 1/16/64/256 concurrent runs, stream relay and 1,000 held streams; prints
a table and writes the same figures as JSON. Goals are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
import orjson  # noqa: E402

import flows  # noqa: E402
import servers  # noqa: E402
from load import closed_loop, guarded, new_client, paired_sequence  # noqa: E402
from peer.install import ensure_peer_venv  # noqa: E402
from percentiles import summary_ms  # noqa: E402
from table import render_table  # noqa: E402

CONCURRENCIES = (1, 16, 64, 256)


class Profile:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.latency_pairs = 60 if quick else 300
        self.window_s = 1.5 if quick else 5.0
        self.warmup_s = 0.5 if quick else 1.0
        self.relay_tokens = 20_000
        self.held_streams = 300 if quick else 1000
        self.held_deltas = 16 if quick else 40
        self.held_delay = 0.25
        self.peer_latency_pairs = 8 if quick else 40
        self.max_phase_s = 6.0 if quick else 30.0  # cap on warm-up and on the window, each


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def background_load(seconds: float = 2.0) -> dict:
    """How busy the machine is before the bench starts anything: other work skews every figure."""
    b0, t0 = servers.machine_cpu()
    time.sleep(seconds)
    b1, t1 = servers.machine_cpu()
    return {"busy_cores_before_start": round((b1 - b0) / seconds, 2), "loadavg": os.getloadavg()}


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_gib, "python": platform.python_version(),
            "os": platform.platform(), "threadloom_commit": commit}


# ------------------------------------------------------------------ upstream control

async def script(upstream: str, responses: list, model: str | None = None) -> None:
    async with httpx.AsyncClient(timeout=30) as c:
        body: dict = {"responses": responses}
        if model:
            body["model"] = model
        (await c.post(upstream + "/__script", content=orjson.dumps(body),
                      headers={"content-type": "application/json"})).raise_for_status()


async def clear_upstream_log(upstream: str) -> None:
    async with httpx.AsyncClient(timeout=30) as c:
        await c.delete(upstream + "/__requests")


# ------------------------------------------------------------------ threadloom setup

async def create_assistant(base: str) -> str:
    async with httpx.AsyncClient(timeout=30, headers=flows.OPENAI_HEADERS) as c:
        r = await c.post(base + "/v1/assistants", json={"model": "bench-model", "name": "bench"})
        r.raise_for_status()
        return r.json()["id"]


async def probe_langgraph_door(base: str, assistant_id: str) -> tuple[str | None, str]:
    """Which assistant_id, if any, runs through threadloom's LangGraph door."""
    async with new_client(30) as c:
        for candidate in ("agent", assistant_id):
            t = await guarded(lambda cl: flows.langgraph_run(cl, base, candidate), c)
            if t.error is None:
                return candidate, "ok"
            last = t.error
        return None, last


def latency_section(tl: list, up: list) -> dict:
    ok = [(a, b) for a, b in zip(tl, up) if a.error is None and b.error is None]
    return {
        "pairs": len(ok),
        "errors": sum(1 for a in tl if a.error) + sum(1 for b in up if b.error),
        "error_samples": sorted({x.error for x in tl + up if x.error})[:5],
        "server_ms": summary_ms([a.latency for a, _ in ok]),
        "upstream_ms": summary_ms([b.latency for _, b in ok]),
        "added_ms": summary_ms([a.latency - b.latency for a, b in ok]),
        "ttft_server_ms": summary_ms([a.ttft for a, _ in ok if a.ttft is not None]),
        "ttft_upstream_ms": summary_ms([b.ttft for _, b in ok if b.ttft is not None]),
        "ttft_added_ms": summary_ms([a.ttft - b.ttft for a, b in ok if a.ttft is not None and b.ttft is not None]),
        # LangGraph API only: time until the `metadata` event, i.e. until a worker took the run.
        "to_metadata_ms": summary_ms([a.started for a, _ in ok if a.started is not None]),
        "added_after_metadata_ms": summary_ms([a.latency - a.started - b.latency for a, b in ok if a.started is not None]),
    }


async def throughput_sweep(flow, server: servers.ServerProcess, prof: Profile, upstream: str, label: str) -> dict:
    out = {}
    for c in CONCURRENCIES:
        await clear_upstream_log(upstream)
        log(f"throughput {label} c={c}")
        r = await closed_loop(flow, c, prof.window_s, warmup_s=prof.warmup_s, server_cpu=server.cpu_seconds,
                              max_phase_s=prof.max_phase_s)
        out[str(c)] = r.as_dict()
        log(f"  -> {r.runs_per_s:.1f} runs/s, errors {r.errors}, p50 {r.latency_ms.get('p50')} ms")
    return out


async def relay_section(base: str, upstream: str, server: servers.ServerProcess, assistant_id: str, n: int) -> dict:
    reply = {"text": "tok ", "repeat": n}
    # The model alone, for reference.
    await script(upstream, [reply], model="bench-relay")
    async with new_client(300) as c:
        t0 = time.perf_counter()
        direct = await guarded(lambda cl: flows.upstream_chat(cl, upstream, model="bench-relay"), c)
        direct_s = time.perf_counter() - t0
    await script(upstream, [reply], model="bench-relay")
    cpu0 = server.cpu_seconds()
    client0 = time.process_time()
    async with new_client(300) as c:
        t = await guarded(lambda cl: flows.threadloom_v1_run(cl, base, assistant_id, model="bench-relay"), c)
    cpu = server.cpu_seconds() - cpu0
    client_cpu = time.process_time() - client0
    stream_s = t.latency - (t.ttft or 0)
    return {
        "tokens": n,
        "error": t.error,
        "deltas_received": t.deltas,
        "run_s": round(t.latency, 3),
        "deltas_per_s": round(t.deltas / stream_s, 0) if t.deltas and stream_s > 0 else None,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_s_per_1000_deltas": round(cpu / (t.deltas / 1000), 4) if t.deltas else None,
        "client_cpu_s": round(client_cpu, 3),
        "upstream_alone_deltas_per_s": round(direct.deltas / direct_s, 0) if direct.deltas else None,
        "upstream_alone_error": direct.error,
    }


async def held_streams(n: int, flow, sample_rss=None) -> dict:
    """n runs at once; returns the timings, the peak RSS seen and the delta delays."""
    peak = {"rss": sample_rss() if sample_rss else 0}
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], sample_rss())
            await asyncio.sleep(0.1)

    sampler = asyncio.ensure_future(sample()) if sample_rss else None
    clients = [new_client(300) for _ in range(n)]
    client0 = time.process_time()
    m0 = servers.machine_cpu()
    t0 = time.perf_counter()
    wall_start = time.time()
    try:
        results = await asyncio.gather(*(guarded(flow, c) for c in clients))
    finally:
        stop.set()
        if sampler:
            await sampler
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    wall = time.perf_counter() - t0
    m1 = servers.machine_cpu()
    delays, steady = [], []
    # Steady state: deltas the model sent once every stream had had its first delta.
    firsts = [r.stamps[0][0] for r in results if r.stamps]
    all_open = max(firsts) if firsts else 0.0
    for r in results:
        for received, data in r.stamps:
            sent = flows.stamp_of(data)
            if sent is None:
                continue
            delays.append(received - sent)
            if sent > all_open:
                steady.append(received - sent)
    errors = [r.error for r in results if r.error]
    return {
        "completed": sum(1 for r in results if r.error is None),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "wall_s": round(wall, 2),
        "client_cpu_s": round(time.process_time() - client0, 2),
        "machine_busy_cores": round((m1[0] - m0[0]) / wall, 2),
        "peak_rss": peak["rss"],
        "delta_delay_ms": summary_ms(delays),
        "delta_delay_all_open_ms": summary_ms(steady),
        "all_open_after_s": round(all_open - wall_start, 2) if firsts else None,
        "deltas_measured": len(delays),
    }


async def held_section(base: str, upstream: str, server: servers.ServerProcess, assistant_id: str,
                       prof: Profile) -> dict:
    n = prof.held_streams
    reply = {"text": "x", "repeat": prof.held_deltas, "delay": prof.held_delay, "stamp": True}
    # The model alone first: what the client and the model add by themselves.
    await clear_upstream_log(upstream)
    await script(upstream, [reply] * n, model="bench-held")
    alone = await held_streams(n, lambda c: flows.upstream_chat(c, upstream, model="bench-held", stamps=True))
    await script(upstream, [reply] * n, model="bench-held")
    rss_before = server.rss_bytes()
    cpu0 = server.cpu_seconds()
    through = await held_streams(
        n, lambda c: flows.threadloom_v1_run(c, base, assistant_id, model="bench-held", stamps=True), server.rss_bytes)
    cpu = server.cpu_seconds() - cpu0
    peak = through.pop("peak_rss")
    alone.pop("peak_rss")
    return {
        "streams": n,
        "deltas_per_stream": prof.held_deltas,
        "upstream_delta_interval_ms": prof.held_delay * 1000,
        **through,
        "server_cpu_s": round(cpu, 2),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "model_alone": alone,
    }


# ------------------------------------------------------------------ sections

async def bench_threadloom(db_url: str, label: str, upstream: servers.ServerProcess, prof: Profile, log_dir: Path,
                           full: bool) -> dict:
    out: dict = {"database": label}
    tl = servers.start_threadloom(log_dir, db_url, upstream.url + "/v1", label)
    try:
        base = tl.url
        asst = await create_assistant(base)
        v1 = lambda c: flows.threadloom_v1_run(c, base, asst)  # noqa: E731
        direct = lambda c: flows.upstream_chat(c, upstream.url)  # noqa: E731
        if full:
            log(f"latency pairs ({prof.latency_pairs}) threadloom /v1 vs upstream, {label}")
            a, b = await paired_sequence(v1, direct, prof.latency_pairs)
            out["latency_v1"] = latency_section(a, b)
        out["throughput_v1"] = await throughput_sweep(v1, tl, prof, upstream.url, f"threadloom /v1 {label}")
        if full:
            lg_asst, why = await probe_langgraph_door(base, asst)
            if lg_asst is None:
                out["langgraph_door"] = {"status": "pending", "reason": why}
                log(f"threadloom's LangGraph door is not usable yet: {why}")
            else:
                lg = lambda c: flows.langgraph_run(c, base, lg_asst)  # noqa: E731
                log("latency pairs threadloom LangGraph door vs upstream")
                a, b = await paired_sequence(lg, direct, prof.latency_pairs)
                out["langgraph_door"] = {"status": "ok", "latency": latency_section(a, b),
                                         "throughput": await throughput_sweep(lg, tl, prof, upstream.url,
                                                                              f"threadloom LangGraph door {label}")}
            log("stream relay")
            out["relay"] = await relay_section(base, upstream.url, tl, asst, prof.relay_tokens)
        out["rss_after_load_mb"] = round(tl.rss_bytes() / 2**20, 1)
        out["runs_served"] = runs_served(out)
        if full:
            # Held streams on a fresh process (same database): what 1,000 open streams cost,
            # apart from what the runs before them left in memory (rss_after_load_mb).
            tl.stop()
            tl = servers.start_threadloom(log_dir, db_url, upstream.url + "/v1", label + "-fresh")
            await asyncio.sleep(3)  # let start-up work (the tokenizer warm-up) finish
            out["rss_fresh_mb"] = round(tl.rss_bytes() / 2**20, 1)
            log(f"held streams ({prof.held_streams}) on a fresh server")
            out["held"] = await held_section(tl.url, upstream.url, tl, asst, prof)
    finally:
        tl.stop()
    return out


def runs_served(section: dict) -> int:
    n = (section.get("latency_v1") or {}).get("pairs", 0)
    for sweep in (section.get("throughput_v1") or {}).values():
        n += sweep.get("completed", 0)
    door = section.get("langgraph_door") or {}
    n += (door.get("latency") or {}).get("pairs", 0)
    for sweep in (door.get("throughput") or {}).values():
        n += sweep.get("completed", 0)
    return n


async def bench_peer(upstream: servers.ServerProcess, prof: Profile, log_dir: Path) -> dict:
    langgraph_bin = ensure_peer_venv()
    out: dict = {"throughput": {}}
    direct = lambda c: flows.upstream_chat(c, upstream.url)  # noqa: E731
    for c in CONCURRENCIES:
        log(f"starting the peer with --n-jobs-per-worker {c}")
        peer = servers.start_peer(log_dir, langgraph_bin, upstream.url + "/v1", c)
        try:
            run = lambda cl: flows.langgraph_run(cl, peer.url, "agent")  # noqa: E731
            if c == 1:
                log(f"latency pairs ({prof.peer_latency_pairs}) peer vs upstream")
                a, b = await paired_sequence(run, direct, prof.peer_latency_pairs, warmup=2)
                out["latency"] = latency_section(a, b)
            await clear_upstream_log(upstream.url)
            log(f"throughput peer c={c}")
            r = await closed_loop(run, c, prof.window_s, warmup_s=prof.warmup_s, server_cpu=peer.cpu_seconds,
                                  max_phase_s=prof.max_phase_s, drain=False)
            out["throughput"][str(c)] = r.as_dict()
            log(f"  -> {r.runs_per_s:.1f} runs/s, errors {r.errors}, p50 {r.latency_ms.get('p50')} ms")
        finally:
            peer.stop()
    out["versions"] = peer_versions()
    return out


def peer_versions() -> dict:
    py = HERE / ".peer-venv" / "bin" / "python"
    code = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
            "['langgraph-api','langgraph-runtime-inmem','langgraph','langchain-openai','langchain-core']}))")
    try:
        return json.loads(subprocess.run([str(py), "-c", code], capture_output=True, text=True).stdout)
    except (OSError, ValueError):
        return {}


def goals(res: dict) -> dict:
    g: dict = {}
    sq = res.get("sqlite") or {}
    lat = (sq.get("latency_v1") or {}).get("added_ms", {}).get("p50")
    g["p50_added_latency_ms<=5"] = {"value": lat, "met": lat is not None and lat <= 5}
    tp = ((sq.get("throughput_v1") or {}).get("64") or {})
    v = tp.get("runs_per_s")
    g["runs_per_s_c64_sqlite>=300"] = {"value": v, "met": v is not None and v >= 300 and tp.get("errors") == 0}
    v = (sq.get("relay") or {}).get("deltas_per_s")
    g["relayed_deltas_per_s>=20000"] = {"value": v, "met": v is not None and v >= 20000}
    held = sq.get("held") or {}
    v = held.get("peak_rss_mb")
    full = (held.get("streams") or 0) >= 1000
    g["1000_held_streams_rss_mb<500"] = {"value": v, "streams": held.get("streams"),
                                         "met": (v is not None and v < 500 and held.get("errors") == 0) if full
                                         else "n/a (fewer than 1,000 streams in this mode)"}
    ratios = res.get("ratios") or {}
    v = ratios.get("added_latency_p50_threadloom_over_peer")
    g["latency_10x_lower_than_peer"] = {"value": v, "met": v is not None and v <= 0.1}
    v = ratios.get("throughput_c64_threadloom_over_peer")
    g["throughput_5x_peer"] = {"value": v, "met": v is not None and v >= 5}
    return g


def ratios(res: dict) -> dict:
    out: dict = {}
    sq = res.get("sqlite") or {}
    peer = res.get("peer") or {}
    door = sq.get("langgraph_door") or {}
    tl_lat = (door.get("latency") or sq.get("latency_v1") or {}).get("added_ms", {}).get("p50")
    out["threadloom_door_compared"] = "langgraph" if door.get("status") == "ok" else "v1"
    pl = (peer.get("latency") or {}).get("added_ms", {}).get("p50")
    if tl_lat is not None and pl:
        out["added_latency_p50_threadloom_over_peer"] = round(tl_lat / pl, 4)
    tl_ttft = (door.get("latency") or sq.get("latency_v1") or {}).get("ttft_server_ms", {}).get("p50")
    pt = (peer.get("latency") or {}).get("ttft_server_ms", {}).get("p50")
    if tl_ttft is not None and pt:
        out["ttft_p50_threadloom_over_peer"] = round(tl_ttft / pt, 4)
    tl_tp = door.get("throughput") or sq.get("throughput_v1") or {}
    for c in CONCURRENCIES:
        a = (tl_tp.get(str(c)) or {}).get("runs_per_s")
        b = ((peer.get("throughput") or {}).get(str(c)) or {}).get("runs_per_s")
        if a is not None and b:
            out[f"throughput_c{c}_threadloom_over_peer"] = round(a / b, 2)
    return out


async def main_async(args) -> dict:
    prof = Profile(args.quick)
    log_dir = Path(tempfile.mkdtemp(prefix="threadloom-bench-"))
    log(f"logs in {log_dir}")
    res: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "mode": "quick" if args.quick else "default", "machine": machine_info(), "settings": vars(prof),
                 "background": background_load()}
    if res["background"]["busy_cores_before_start"] > 0.2:
        log(f"warning: the machine is already busy ({res['background']['busy_cores_before_start']} cores) -- "
            "figures will be lower than on a quiet machine")
    t_start = time.perf_counter()
    upstream = servers.start_upstream(log_dir)
    try:
        log("model alone: upstream chat completions at concurrency 1..256")
        direct = lambda c: flows.upstream_chat(c, upstream.url)  # noqa: E731
        res["upstream_alone"] = await throughput_sweep(direct, upstream, prof, upstream.url, "upstream alone")

        def section(name, coro_fn):
            async def go():
                try:
                    res[name] = await coro_fn()
                except Exception as exc:  # a broken section must not hide the others
                    log(f"section {name} failed: {exc!r}")
                    res[name] = {"status": "failed", "error": repr(exc), "trace": traceback.format_exc()[-2000:]}
            return go()

        db_file = log_dir / "bench.db"
        await section("sqlite", lambda: bench_threadloom(f"sqlite:///{db_file}", "sqlite", upstream, prof, log_dir, True))
        if not args.no_postgres:
            name = f"threadloom_bench_{os.getpid()}"
            url = servers.create_postgres_database(name)
            if url is None:
                res["postgresql"] = {"status": "skipped", "error": "no PostgreSQL on 127.0.0.1:5432"}
            else:
                try:
                    await section("postgresql", lambda: bench_threadloom(url, "postgresql", upstream, prof, log_dir, False))
                finally:
                    servers.drop_postgres_database(name)
        if not args.no_peer:
            await section("peer", lambda: bench_peer(upstream, prof, log_dir))
    finally:
        upstream.stop()
    res["ratios"] = ratios(res)
    res["goals"] = goals(res)
    res["total_s"] = round(time.perf_counter() - t_start, 1)
    res["log_dir"] = str(log_dir)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter windows and fewer samples (under 2 minutes)")
    p.add_argument("--out", default=str(HERE / "results" / "latest.json"), help="where the JSON figures go")
    p.add_argument("--no-peer", action="store_true", help="skip LangGraph's server")
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL throughput sweep")
    args = p.parse_args(argv)
    raise_fd_limit()
    try:
        import uvloop

        res = uvloop.run(main_async(args))
    except ImportError:
        res = asyncio.run(main_async(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(render_table(res))
    log(f"figures written to {out} (took {res['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
