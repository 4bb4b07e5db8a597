"""A user's graph served by threadloom and by LangGraph's in-memory Agent Server.

    python bench/graphs.py [--quick] [--out bench/results/graphs.json]

Same file, same model, same client: both servers serve bench/peer/langgraph.json (one
node calling `ChatOpenAI`, streaming, pointed at the scripted model
tests/scripted_upstream.py), threadloom with `--langgraph-config` on SQLite, the peer
with `langgraph dev` (installed on first use into bench/.peer-venv, never a dependency of
threadloom). Each run is `POST /threads` then `POST /threads/{id}/runs/stream` with
`stream_mode: "messages-tuple"`, read until the stream ends (bench/flows.py).

Measured: latency per run at concurrency 1 (the two servers alternate run by run), and
runs per second with 1, 16 and 64 closed-loop clients (the peer started with as many
jobs per worker). threadloom imports langchain-openai from the peer's environment (put at
the end of its sys.path, so threadloom's own packages win). Figures are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import flows  # noqa: E402
import servers  # noqa: E402
from load import closed_loop, paired_sequence  # noqa: E402
from peer.install import VENV, ensure_peer_venv  # noqa: E402
from percentiles import summary_ms  # noqa: E402

PEER_CONFIG = HERE / "peer" / "langgraph.json"
# threadloom, with the peer's packages after its own (the graph file imports langchain_openai).
LAUNCH = "import sys; sys.path.append({site!r}); from threadloom.cli import main; sys.exit(main())"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def peer_site_packages() -> str:
    return str(next((VENV / "lib").glob("python3*/site-packages")))


def start_threadloom(log_dir: Path, upstream_v1: str) -> servers.ServerProcess:
    port = servers.free_port()
    cmd = [sys.executable, "-c", LAUNCH.format(site=peer_site_packages()), "serve", "--port", str(port),
           "--database", f"sqlite:///{log_dir / 'graphs.db'}", "--langgraph-config", str(PEER_CONFIG),
           "--log-level", "warning"]
    env = {"PEER_UPSTREAM_URL": upstream_v1}
    return servers.ServerProcess("threadloom-graphs", cmd, port, "/healthz", log_dir, env=env).wait_ready(90)


async def measure(quick: bool, log_dir: Path) -> dict:
    langgraph_bin = ensure_peer_venv()
    upstream = servers.start_upstream(log_dir)
    pairs, window = (10, 3.0) if quick else (40, 6.0)
    concurrencies = (1, 16) if quick else (1, 16, 64)
    out: dict = {"pairs": pairs, "window_s": window, "throughput": {}}
    threadloom = start_threadloom(log_dir, upstream.url + "/v1")
    try:
        ours = lambda client: flows.langgraph_run(client, threadloom.url, "agent")  # noqa: E731
        for c in concurrencies:
            peer = servers.start_peer(log_dir, langgraph_bin, upstream.url + "/v1", c)
            try:
                theirs = lambda client: flows.langgraph_run(client, peer.url, "agent")  # noqa: E731
                if c == 1:
                    log(f"latency: {pairs} runs on each, alternating")
                    a, b = await paired_sequence(ours, theirs, pairs, warmup=3)
                    out["latency_ms"] = {
                        "threadloom": summary_ms([t.latency for t in a if t.error is None]),
                        "peer": summary_ms([t.latency for t in b if t.error is None]),
                        "errors": {"threadloom": sum(1 for t in a if t.error), "peer": sum(1 for t in b if t.error)},
                        "error_samples": sorted({t.error for t in a + b if t.error})[:5],
                    }
                row = {}
                for label, flow, server in (("threadloom", ours, threadloom), ("peer", theirs, peer)):
                    log(f"throughput {label} c={c}")
                    result = await closed_loop(flow, c, window, warmup_s=1.0, server_cpu=server.cpu_seconds,
                                               max_phase_s=30.0)
                    row[label] = result.as_dict()
                    log(f"  -> {result.runs_per_s:.1f} runs/s, errors {result.errors}, p50 {result.latency_ms.get('p50')} ms")
                out["throughput"][str(c)] = row
            finally:
                peer.stop()
    finally:
        threadloom.stop()
        upstream.stop()
    return out


def ratios(res: dict) -> dict:
    out = {}
    lat = res.get("latency_ms") or {}
    if lat.get("threadloom", {}).get("p50") and lat.get("peer", {}).get("p50"):
        out["latency_p50_threadloom_over_peer"] = round(lat["threadloom"]["p50"] / lat["peer"]["p50"], 3)
    for c, row in res["throughput"].items():
        ours, theirs = row["threadloom"]["runs_per_s"], row["peer"]["runs_per_s"]
        if theirs:
            out[f"runs_per_s_c{c}_threadloom_over_peer"] = round(ours / theirs, 2)
    return out


def table(res: dict) -> str:
    lat = res.get("latency_ms") or {}
    lines = ["| | threadloom | LangGraph in-memory server |", "|---|---|---|"]
    fmt = lambda s: f"{s.get('p50')} / {s.get('p90')} / {s.get('p99')} ms" if s and s.get("n") else "—"  # noqa: E731
    lines.append(f"| latency per run, c=1 (p50 / p90 / p99) | {fmt(lat.get('threadloom'))} | {fmt(lat.get('peer'))} |")
    for c, row in res["throughput"].items():
        cell = lambda r: f"{r['runs_per_s']}/s ({r['errors']} err, server {r['server_cores']} cores)"  # noqa: E731
        lines.append(f"| runs/s, {c} clients | {cell(row['threadloom'])} | {cell(row['peer'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results" / "graphs.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-graphs-") as tmp:
        res = asyncio.run(measure(args.quick, Path(tmp)))
    res["ratios"] = ratios(res)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(table(res))
    print(json.dumps(res["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
