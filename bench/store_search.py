"""What the store's vector index costs: the LangGraph /store with langgraph.json's
`store.index` (each put embedded by the server's offline all-MiniLM-L6-v2, a search query
ranked by cosine similarity) against the same server without one (a query ranked by the
words it shares with each value), in the same run.

    python bench/store_search.py [--quick] [--items N] [--out bench/results/store_search.json]

Both servers (SQLite, one process each) get the same N items, put one at a time, then the
same queries; latency per put and per search (limit 10, over every item) is measured
through langgraph-sdk, with the two servers alternating request by request. Also reported:
how often the item a query was written for ranks first (the index's point). Figures are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import servers  # noqa: E402
from percentiles import summary_ms  # noqa: E402

GRAPH = HERE.parent / "tests" / "graphs" / "progress.py"
TOPICS = ["hiking in the mountains", "baking sourdough bread", "learning the violin", "fixing a bicycle",
          "growing tomatoes", "watching the night sky", "training for a marathon", "painting with watercolours",
          "keeping bees", "sailing a small boat", "brewing coffee", "restoring old furniture"]
# A question per topic that shares few words with how the topic is written.
QUESTIONS = ["which trails did I walk up peaks on", "what do I do with flour and a starter", "which string instrument am I practising",
             "how did I repair my bike", "what vegetables are in my garden", "what did I see through the telescope",
             "how am I preparing for the long race", "what kind of art do I make with brushes", "what about my hives and honey",
             "what happened on the water with the dinghy", "how do I make my morning espresso", "which chair did I sand and varnish"]


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def start(log_dir: Path, label: str, index: bool) -> servers.ServerProcess:
    config = log_dir / f"{label}.json"
    store = {"index": {"fields": ["text"]}} if index else {}
    config.write_text(json.dumps({"graphs": {"progress": f"{GRAPH}:graph"}, "store": store}))
    port = servers.free_port()
    cmd = [sys.executable, "-m", "threadloom.cli", "serve", "--port", str(port), "--database",
           f"sqlite:///{log_dir / (label + '.db')}", "--langgraph-config", str(config), "--log-level", "warning"]
    return servers.ServerProcess(f"threadloom-{label}", cmd, port, "/healthz", log_dir).wait_ready(90)


def items(n: int) -> list[tuple[str, dict, int]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        topic = i % len(TOPICS)
        detail = rng.choice(["last weekend", "with a friend", "for the first time", "again", "in the rain"])
        out.append((f"note-{i}", {"text": f"A note about {TOPICS[topic]} {detail}, number {i}."}, topic))
    return out


async def measure(quick: bool, n_items: int, log_dir: Path) -> dict:
    from langgraph_sdk import get_client

    runs = {label: start(log_dir, label, index) for label, index in (("index", True), ("words", False))}
    try:
        clients = {label: get_client(url=server.url, api_key=None) for label, server in runs.items()}
        for lg in clients.values():  # warm: the first put loads the embedding model
            await lg.store.put_item(["warm"], "x", {"text": "warm up"})
        puts = {label: [] for label in clients}
        for key, value, _ in items(n_items):
            for label, lg in clients.items():
                t0 = time.perf_counter()
                await lg.store.put_item(["notes"], key, value)
                puts[label].append(time.perf_counter() - t0)
        searches = {label: [] for label in clients}
        first = {label: 0 for label in clients}
        rounds = 2 if quick else 5
        for _ in range(rounds):
            for topic, question in enumerate(QUESTIONS):
                for label, lg in clients.items():
                    t0 = time.perf_counter()
                    found = (await lg.store.search_items(["notes"], query=question, limit=10))["items"]
                    searches[label].append(time.perf_counter() - t0)
                    top = found[0]["value"]["text"] if found else ""
                    first[label] += TOPICS[topic] in top
        asked = rounds * len(QUESTIONS)
        return {
            "items": n_items,
            "put_ms": {label: summary_ms(v) for label, v in puts.items()},
            "search_ms": {label: summary_ms(v) for label, v in searches.items()},
            "top_hit_rate": {label: round(first[label] / asked, 3) for label in clients},
            "ratio_search_p50_index_over_words": round(summary_ms(searches["index"])["p50"] / summary_ms(searches["words"])["p50"], 2),
            "ratio_put_p50_index_over_words": round(summary_ms(puts["index"])["p50"] / summary_ms(puts["words"])["p50"], 2),
        }
    finally:
        for server in runs.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    n_items = args.items or (200 if args.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        log(f"{n_items} items, index vs words")
        result = asyncio.run(measure(args.quick, n_items, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
