"""code_interpreter figures: the round trip of `print(1)` through a run (a cold session, then a
warm one) against a plain run, executions per second with 8 threads at once, and the memory
of an idle session.

    python bench/code_interpreter.py [--rounds 10] [--threads 8]

The scripted model stands in for the LLM: it calls code_interpreter with `print(1)`, then
answers. Needs the sandbox (bubblewrap, root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import servers  # noqa: E402
from percentiles import summary_ms  # noqa: E402

CALL = {"tool_calls": [{"name": "code_interpreter", "arguments": {"code": "print(1)"}}]}


async def one_run(client: httpx.AsyncClient, upstream: httpx.AsyncClient, assistant: str, thread: str | None, code: bool) -> tuple[float, str]:
    await upstream.post("/__script", json={"responses": ([CALL] if code else []) + [{"text": "ok"}]})
    t0 = time.perf_counter()
    body = {"assistant_id": assistant, "stream": True}
    if thread is None:
        body["thread"] = {"messages": [{"role": "user", "content": "go"}]}
        path = "/threads/runs"
    else:
        path = f"/threads/{thread}/runs"
    new_thread = thread
    async with client.stream("POST", path, json=body) as r:
        async for line in r.aiter_lines():
            if new_thread is None and line.startswith("data: {") and '"thread_id"' in line:
                new_thread = json.loads(line[6:])["thread_id"]
    return time.perf_counter() - t0, new_thread


def kernel_rss_mb() -> list[float]:
    """RSS of each sandboxed kernel (processes running ipykernel_launcher)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"ipykernel_launcher" in cmd and b"bwrap" not in cmd and b"unshare" not in cmd:
                out.append(servers.rss_bytes([int(pid)]) / 2**20)
        except OSError:
            continue
    return out


async def main_async(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-code-"))
    upstream = servers.start_upstream(work)
    server = servers.start_threadloom(work, f"sqlite:///{work / 'code.db'}", upstream.url + "/v1", "code")
    try:
        async with httpx.AsyncClient(base_url=server.url + "/v1", timeout=120) as client, httpx.AsyncClient(base_url=upstream.url) as up:
            plain = (await client.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
            coder = (await client.post("/assistants", json={"model": "gpt-4o", "tools": [{"type": "code_interpreter"}]})).json()["id"]
            cold, warm, base = [], [], []
            for _ in range(args.rounds):
                seconds, thread = await one_run(client, up, coder, None, True)
                cold.append(seconds)
                warm.append((await one_run(client, up, coder, thread, True))[0])
                base.append((await one_run(client, up, plain, None, False))[0])
            idle = kernel_rss_mb()
            # Throughput: N threads (warm sessions) executing at once, for a few seconds. Each
            # has a model name of its own, so the scripted replies cannot cross.
            threads = []
            for i in range(args.threads):
                model = f"bench-code-{i}"
                assistant = (await client.post("/assistants", json={"model": model, "tools": [{"type": "code_interpreter"}]})).json()["id"]
                await up.post("/__script", json={"responses": [CALL, {"text": "ok"}], "model": model})
                threads.append((model, assistant, (await one_run(client, up, assistant, None, False))[1]))
            done = 0
            stop = time.perf_counter() + 8

            async def loop(model, assistant, thread):
                nonlocal done
                while time.perf_counter() < stop:
                    await up.post("/__script", json={"responses": [CALL, {"text": "ok"}], "model": model})
                    async with client.stream("POST", f"/threads/{thread}/runs", json={"assistant_id": assistant, "stream": True}) as r:
                        async for _ in r.aiter_raw():
                            pass
                    done += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(loop(*t) for t in threads))
            elapsed = time.perf_counter() - t0
        return {
            "plain_run_ms": summary_ms(base),
            "cold_print1_run_ms": summary_ms(cold),
            "warm_print1_run_ms": summary_ms(warm),
            "added_warm_p50_ms": round(summary_ms(warm)["p50"] - summary_ms(base)["p50"], 1),
            "runs_with_one_execution_per_s": round(done / elapsed, 1),
            "threads": args.threads,
            "idle_kernel_rss_mb": {"n": len(idle), "mean": round(sum(idle) / len(idle), 1) if idle else None},
        }
    finally:
        server.stop()
        upstream.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
