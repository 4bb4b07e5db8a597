"""How long a SIGTERM takes with N runs streaming, and how they end.

    python bench/shutdown.py [--runs 100] [--grace 10]

Starts the scripted model and threadloom on SQLite, opens N streaming runs whose answers
would take 60 s (so the grace period always runs out), sends SIGTERM once every stream has
seen text, and reports: seconds from the signal to the process's exit, how each stream
ended (its last run event), and whether every message kept its streamed text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import servers  # noqa: E402


async def stream(client: httpx.AsyncClient, assistant: str, seen: asyncio.Event, ends: list) -> None:
    thread = (await client.post("/threads", json={"messages": [{"role": "user", "content": "talk"}]})).json()["id"]
    last = None
    try:
        async with client.stream("POST", f"/threads/{thread}/runs", json={"assistant_id": assistant, "stream": True}) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: thread.message.delta"):
                    seen.set()
                elif line.startswith("event: thread.run.") and not line.startswith("event: thread.run.step"):
                    last = line.split(": ", 1)[1]
    except httpx.HTTPError as exc:
        last = f"cut: {exc.__class__.__name__}"
    ends.append((thread, last))


async def main_async(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-shutdown-"))
    upstream = servers.start_upstream(work)
    port = servers.free_port()
    db = f"sqlite:///{work / 'shutdown.db'}"
    cmd = [sys.executable, "-m", "threadloom.cli", "serve", "--port", str(port), "--database", db,
           "--upstream", upstream.url + "/v1", "--shutdown-grace", str(args.grace), "--log-level", "warning"]
    server = servers.ServerProcess("threadloom", cmd, port, "/healthz", work, cwd=servers.REPO).wait_ready(90)
    try:
        async with httpx.AsyncClient(base_url=upstream.url) as up:
            await up.post("/__default", json={"text": "word " * 600, "chunk_size": 5, "delay": 0.5})
        limits = httpx.Limits(max_connections=args.runs + 10)
        async with httpx.AsyncClient(base_url=server.url + "/v1", timeout=120, limits=limits) as client:
            assistant = (await client.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
            events = [asyncio.Event() for _ in range(args.runs)]
            ends: list = []
            tasks = [asyncio.create_task(stream(client, assistant, e, ends)) for e in events]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            while server.proc.poll() is None:
                await asyncio.sleep(0.02)
            exit_s = time.monotonic() - started
            await asyncio.gather(*tasks)
        log = server.log_path.read_text(errors="replace")
        outcome: dict = {}
        for _, last in ends:
            outcome[last] = outcome.get(last, 0) + 1
        return {"runs": args.runs, "grace_s": args.grace, "sigterm_to_exit_s": round(exit_s, 2),
                "streams_ended_with": outcome, "tracebacks_in_log": log.count("Traceback")}
    finally:
        server.stop()
        upstream.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--grace", type=float, default=10)
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
