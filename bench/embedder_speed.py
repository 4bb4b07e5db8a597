"""Speed of the local embedding model (all-MiniLM-L6-v2, int8 ONNX) on this machine.

    python bench/embedder_speed.py [--threads N] [--chunks 64] [--queries 256] [--rounds 30]

Prints: the load time (the first call: sha256 checks, onnxruntime session, one query);
the latency of one query embedding; embeddings per second for short queries and for
800-token chunks (cut by threadloom's chunker from English prose: stdlib docstrings; the
model reads only the first 256 WordPiece tokens of each); and the latency of one query
while a file's chunks are being embedded. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from threadloom.retrieval.chunking import chunk_text  # noqa: E402
from threadloom.retrieval.embedders import MAX_TOKENS, local_embedder  # noqa: E402

QUERIES = [
    "How many vacation days do I get?",
    "What is the refund policy for annual plans?",
    "Who do I contact about a broken laptop?",
    "Can I work remotely from another country?",
    "When is the quarterly report due?",
    "How do I reset my password?",
    "What does the warranty cover?",
    "Is parking available at the office?",
]


def prose() -> str:
    """Plenty of English text that is on every machine: the stdlib's docstrings."""
    docs = []
    for name in ("argparse", "asyncio", "collections", "json", "logging", "pathlib", "subprocess", "threading",
                 "unittest", "http.client", "decimal", "datetime", "socket", "tarfile", "zipfile"):
        for _, obj in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            for member in (obj, *vars(obj).values()):
                doc = member.__doc__ if isinstance(getattr(member, "__doc__", None), str) else ""
                if len(doc) > 200:
                    docs.append(inspect.cleandoc(doc))
    return "\n\n".join(dict.fromkeys(docs))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: half the cores)")
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30, help="single-query calls timed for the latency")
    args = parser.parse_args()

    chunks = [c.text for c in chunk_text(prose(), max_tokens=800, overlap=400)][: args.chunks]
    queries = [QUERIES[i % len(QUERIES)] + f" ({i})" for i in range(args.queries)]
    embedder = local_embedder(args.threads)
    print(f"model {embedder.model}, {embedder.threads} onnxruntime thread(s)")

    start = time.perf_counter()
    await embedder.embed(["warm up"])
    print(f"load (first call: sha256 checks, session, one query): {ms(time.perf_counter() - start)}")

    times = []
    for i in range(args.rounds):
        start = time.perf_counter()
        await embedder.embed([QUERIES[i % len(QUERIES)]])
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"one query: p50 {ms(statistics.median(times))}, p90 {ms(times[int(len(times) * 0.9) - 1])}")

    start = time.perf_counter()
    await embedder.embed(queries)
    elapsed = time.perf_counter() - start
    print(f"short queries: {len(queries) / elapsed:.0f} embeddings/s ({len(queries)} in one call)")

    from tokenizers import Tokenizer

    from threadloom.retrieval.embedders import TOKENIZER_FILE, _packaged_file

    tokenizer = Tokenizer.from_file(str(_packaged_file(*TOKENIZER_FILE)))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    wordpieces = tokenizer.encode_batch(chunks)
    mean_wp = statistics.mean(len(e.ids) for e in wordpieces)
    start = time.perf_counter()
    await embedder.embed(chunks)
    elapsed = time.perf_counter() - start
    print(
        f"800-token chunks: {len(chunks) / elapsed:.1f} embeddings/s ({len(chunks)} chunks, "
        f"{mean_wp:.0f} WordPiece tokens each on average, the first {MAX_TOKENS} read)"
    )

    ingestion = asyncio.create_task(embedder.embed(chunks))
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await embedder.embed([QUERIES[0]])
    during = time.perf_counter() - start
    await ingestion
    print(f"one query while {len(chunks)} chunks are being embedded: {ms(during)}")
    await embedder.aclose()


if __name__ == "__main__":
    asyncio.run(main())
