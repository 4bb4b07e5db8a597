"""file_search figures: ingestion chunks/s with the default embedder, search latency on one
store of 1k, 10k and 100k chunks (SQLite and PostgreSQL), the added latency of a
file_search run over a plain run, and the server's RSS with 100k chunks indexed.

    python bench/file_search.py [--sizes 1000,10000,100000] [--searches 50] [--no-postgres]

Ingestion goes through the API (upload, vector store, the server's own parse, chunk and
embed). Embedding 100k chunks with the CPU model would take hours on 2 cores, so the
search stores are filled by writing chunks straight into the server's database: random
unit embeddings and text drawn from a 20,000-word vocabulary, as the ingestion worker
writes them (then the store's version is bumped, as ingestion does). Queries are real:
the server embeds each one with the default model and runs the hybrid search.
The first search after a fill builds the server's in-memory index; it is reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import string
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import servers  # noqa: E402
from percentiles import summary_ms  # noqa: E402

from threadloom.store import tables  # noqa: E402
from threadloom.store.database import Database  # noqa: E402

DIMS = 384


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def fill_store(url: str, store_id: str, n: int, seed: int = 7) -> None:
    """n chunks in 100 files of one store, written as ingestion writes them."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(20_000)]
    vectors = np.random.default_rng(seed).standard_normal((n, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = int(time.time())
    files = 100

    def write(conn):
        for f in range(files):
            file_id = f"file-{store_id[3:15]}{f:04d}"
            body = {"id": file_id, "object": "vector_store.file", "usage_bytes": 0, "created_at": now,
                    "vector_store_id": store_id, "status": "completed", "last_error": None,
                    "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}},
                    "attributes": {}}
            conn.execute(insert(tables.vector_store_files), {"id": file_id, "vector_store_id": store_id, "status": "completed",
                                                             "created_at": now, "usage_bytes": 0, "body": body})
            conn.execute(insert(tables.files), {"id": file_id, "created_at": now, "purpose": "assistants",
                                                "body": {"id": file_id, "object": "file", "bytes": 1, "created_at": now,
                                                         "filename": f"doc-{f}.txt", "purpose": "assistants", "status": "processed"}})
        rows = []
        for i in range(n):
            rows.append({"vector_store_id": store_id, "file_id": f"file-{store_id[3:15]}{i % files:04d}", "position": i // files,
                         "text": " ".join(rng.choices(words, k=60)), "embedding": vectors[i].tobytes()})
            if len(rows) == 5000:
                conn.execute(insert(tables.vector_store_chunks), rows)
                rows = []
        if rows:
            conn.execute(insert(tables.vector_store_chunks), rows)
        conn.execute(update(tables.vector_stores).where(tables.vector_stores.c.id == store_id)
                     .values(version=tables.vector_stores.c.version + 1))

    db = Database(url)
    try:
        await db.transact(write)
    finally:
        await db.dispose()


async def ingestion(client: httpx.AsyncClient, docs: int = 8) -> dict:
    """Upload `docs` text files of ~25k tokens and time them into `completed` chunks."""
    rng = random.Random(3)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 8))) for _ in range(5000)]
    ids = []
    for d in range(docs):
        text = " ".join(rng.choices(words, k=20_000))
        r = await client.post("/files", data={"purpose": "assistants"}, files={"file": (f"doc{d}.txt", io.BytesIO(text.encode()))})
        ids.append(r.json()["id"])
    start = time.perf_counter()
    store = (await client.post("/vector_stores", json={"file_ids": ids, "chunking_strategy": {
        "type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}})).json()
    while True:
        store = (await client.get(f"/vector_stores/{store['id']}")).json()
        if store["status"] != "in_progress":
            break
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - start
    chunks = 0
    for fid in ids:
        chunks += len((await client.get(f"/vector_stores/{store['id']}/files/{fid}/content")).json()["data"])
    return {"files": docs, "chunks": chunks, "seconds": round(seconds, 2), "chunks_per_s": round(chunks / seconds, 1),
            "chunk_tokens": 200, "completed": store["file_counts"]["completed"]}


async def search_sizes(client: httpx.AsyncClient, server: servers.ServerProcess, db: str, sizes: list[int], searches: int) -> list[dict]:
    out = []
    queries = ["quarterly planning budget", "how many vacation days", "invoice total amount", "security badge rules"]
    for n in sizes:
        store = (await client.post("/vector_stores", json={"name": f"bench-{n}"})).json()
        t0 = time.perf_counter()
        await fill_store(db, store["id"], n)
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = await client.post(f"/vector_stores/{store['id']}/search", json={"query": "warm up", "max_num_results": 10})
        assert r.status_code == 200, r.text
        build_s = time.perf_counter() - t0
        samples = []
        for i in range(searches):
            t0 = time.perf_counter()
            r = await client.post(f"/vector_stores/{store['id']}/search", json={"query": queries[i % len(queries)], "max_num_results": 10})
            samples.append(time.perf_counter() - t0)
            assert r.status_code == 200 and len(r.json()["data"]) == 10, r.text
        row = {"chunks": n, "fill_s": round(fill_s, 1), "first_search_ms": round(build_s * 1000, 1),
               "search_ms": summary_ms(samples), "rss_mb": round(server.rss_bytes() / 2**20)}
        log(f"  {n} chunks: p50 {row['search_ms']['p50']} ms, p99 {row['search_ms']['p99']} ms, first {row['first_search_ms']} ms, RSS {row['rss_mb']} MB")
        out.append(row)
    return out


async def run_latency(client: httpx.AsyncClient, upstream: str, store_id: str, n: int) -> dict:
    """End-to-end time of a run that searches once against one that does not, on the
    scripted model (alternating, same client)."""
    plain = (await client.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
    searching = (await client.post("/assistants", json={"model": "gpt-4o", "tools": [{"type": "file_search"}],
                                                        "tool_resources": {"file_search": {"vector_store_ids": [store_id]}}})).json()["id"]
    times = {"plain": [], "file_search": []}
    async with httpx.AsyncClient(base_url=upstream) as up:
        for i in range(n):
            for label, assistant in (("plain", plain), ("file_search", searching)):
                replies = [{"text": "ok"}] if label == "plain" else [
                    {"tool_calls": [{"name": "file_search", "arguments": {"query": "quarterly planning"}}]}, {"text": "ok"}]
                await up.post("/__script", json={"responses": replies})
                t0 = time.perf_counter()
                async with client.stream("POST", "/threads/runs", json={
                        "assistant_id": assistant, "stream": True,
                        "thread": {"messages": [{"role": "user", "content": "hi"}]}}) as r:
                    async for _ in r.aiter_raw():
                        pass
                if i >= 3:  # warm-up
                    times[label].append(time.perf_counter() - t0)
    p, f = summary_ms(times["plain"]), summary_ms(times["file_search"])
    return {"plain_ms": p, "file_search_ms": f, "added_p50_ms": round(f["p50"] - p["p50"], 2),
            "ratio_p50": round(f["p50"] / p["p50"], 2)}


async def bench_database(label: str, db: str, upstream: servers.ServerProcess, sizes: list[int], searches: int, log_dir: Path) -> dict:
    log(f"threadloom on {label}")
    server = servers.start_threadloom(log_dir, db, upstream.url + "/v1", label)
    try:
        async with httpx.AsyncClient(base_url=server.url + "/v1", timeout=600) as client:
            result: dict = {"rss_mb_start": round(server.rss_bytes() / 2**20)}
            if label == "sqlite":
                result["ingestion"] = await ingestion(client)
                log(f"  ingestion: {result['ingestion']}")
            result["search"] = await search_sizes(client, server, db, sizes, searches)
            small = next(r for r in (await client.get("/vector_stores", params={"limit": 100})).json()["data"] if r["name"] == f"bench-{sizes[0]}")
            result["run_latency"] = await run_latency(client, upstream.url, small["id"], 30)
            log(f"  run latency: {result['run_latency']}")
        return result
    finally:
        server.stop()


async def main_async(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    upstream = servers.start_upstream(work)
    results: dict = {"sizes": sizes}
    try:
        results["sqlite"] = await bench_database("sqlite", f"sqlite:///{work / 'bench-fs.db'}", upstream, sizes, args.searches, work)
        if not args.no_postgres:
            pg = servers.create_postgres_database("threadloom_bench_fs")
            if pg:
                try:
                    results["postgresql"] = await bench_database("postgresql", pg, upstream, sizes, args.searches, work)
                finally:
                    servers.drop_postgres_database("threadloom_bench_fs")
    finally:
        upstream.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--searches", type=int, default=50)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--work", default=str(Path(__file__).resolve().parent / "results" / "file_search"))
    args = parser.parse_args()
    for leftover in Path(args.work).glob("bench-fs.db*"):
        leftover.unlink()
    results = asyncio.run(main_async(args))
    out = Path(args.work) / "file_search.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
