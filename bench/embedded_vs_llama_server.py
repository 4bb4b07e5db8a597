"""The embedded backend next to llama_cpp.server, on the same GGUF model, in one run.

    python bench/embedded_vs_llama_server.py [--rounds 3] [--max-tokens 128] [--threads N]
                                              [--model-path FILE] [--out FILE.json]

Both sides run the same llama.cpp build (llama-cpp-python) with the same model, context
size, thread counts and sampling (greedy, repeat penalty 1.1), so the prompts and answers
are the same and the difference is what each adds around llama.cpp: threadloom's
EmbeddedBackend in-process (worker thread + asyncio queue), against llama_cpp.server
over HTTP with server-sent events (`pip install "llama-cpp-python[server]"`).

For each request: TTFT = request start to the first non-empty text; decode tok/s =
(tokens after the first) / (time from the first to the last text); end-to-end tok/s =
tokens / total time. Tokens are counted by the model's tokenizer on the text each side
returned, the same way for both. The two sides take turns request by request (the first
alternating), so a change of machine load falls on both. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from threadloom.llm.base import ChatRequest, TextDelta  # noqa: E402
from threadloom.llm.embedded import EmbeddedBackend, packaged_model_path  # noqa: E402

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how rain forms, step by step.",
    "Describe a busy market in the morning.",
    "Give advice to someone learning to cook.",
    "Tell me about the history of bicycles.",
]
N_CTX = 2048
REPEAT_PENALTY = 1.1  # the embedded backend's free-text setting and llama_cpp.server's default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llama_server(model_path: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", str(threads), "--verbose", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("llama_cpp.server exited; is llama-cpp-python[server] installed?")
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("llama_cpp.server did not start in 120 s")


def measure(start: float, stamps: list[tuple[float, str]], count) -> dict:
    text = "".join(t for _, t in stamps)
    tokens = count(text)
    first, last = stamps[0][0], stamps[-1][0]
    return {
        "ttft_ms": (first - start) * 1000,
        "tokens": tokens,
        "decode_tok_s": (tokens - 1) / (last - first) if last > first and tokens > 1 else None,
        "e2e_tok_s": tokens / (last - start),
        "text": text,
    }


async def embedded_once(backend: EmbeddedBackend, prompt: str, max_tokens: int) -> dict:
    request = ChatRequest("bench", [{"role": "user", "content": prompt}], temperature=0.0, max_tokens=max_tokens)
    stamps = []
    start = time.perf_counter()
    async for chunk in backend.stream_chat(request):
        if isinstance(chunk, TextDelta) and chunk.text:
            stamps.append((time.perf_counter(), chunk.text))
    return measure(start, stamps, backend.count_tokens)


async def server_once(client: httpx.AsyncClient, prompt: str, max_tokens: int, count) -> dict:
    body = {
        "model": "bench", "messages": [{"role": "user", "content": prompt}], "stream": True,
        "temperature": 0.0, "max_tokens": max_tokens, "repeat_penalty": REPEAT_PENALTY,
    }
    stamps = []
    start = time.perf_counter()
    async with client.stream("POST", "/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            text = (choices[0].get("delta") or {}).get("content")
            if text:
                stamps.append((time.perf_counter(), text))
    return measure(start, stamps, count)


def summarize(samples: list[dict]) -> dict:
    def median(key):
        values = [s[key] for s in samples if s[key] is not None]
        return statistics.median(values) if values else None

    return {
        "requests": len(samples),
        "tokens": sum(s["tokens"] for s in samples),
        "ttft_ms_median": median("ttft_ms"),
        "decode_tok_s_median": median("decode_tok_s"),
        "e2e_tok_s_median": median("e2e_tok_s"),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="times each prompt is asked of each side")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=max(multiprocessing.cpu_count() // 2, 1),
                        help="llama.cpp generation threads on both sides (default: half the cores, both sides' default)")
    parser.add_argument("--model-path", default=None, help="GGUF file (default: the packaged SmolLM2-135M)")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()

    model_path = args.model_path or packaged_model_path()
    backend = EmbeddedBackend(model_path=model_path, context_window=N_CTX, n_threads=args.threads)
    proc, url = start_llama_server(model_path, args.threads)
    results: dict[str, list[dict]] = {"embedded": [], "llama_server": []}
    load_before = os.getloadavg()[0]
    same_text = 0
    try:
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:
            # Warm-up: load the embedded model, let both sides touch their pages once.
            await embedded_once(backend, "Hello", 8)
            await server_once(client, "Hello", 8, backend.count_tokens)
            for turn in range(args.rounds * len(PROMPTS)):
                prompt = PROMPTS[turn % len(PROMPTS)]
                # Who goes first alternates, so that neither side always finds the
                # caches warm (or cold) from the other.
                if turn % 2 == 0:
                    emb = await embedded_once(backend, prompt, args.max_tokens)
                    srv = await server_once(client, prompt, args.max_tokens, backend.count_tokens)
                else:
                    srv = await server_once(client, prompt, args.max_tokens, backend.count_tokens)
                    emb = await embedded_once(backend, prompt, args.max_tokens)
                results["embedded"].append(emb)
                results["llama_server"].append(srv)
                same_text += emb["text"] == srv["text"]
    finally:
        proc.terminate()
        proc.wait(10)
        await backend.aclose()

    emb, srv = summarize(results["embedded"]), summarize(results["llama_server"])

    def ratio(key):
        return emb[key] / srv[key] if emb[key] and srv[key] else None

    report = {
        "model": os.path.basename(model_path),
        "threads": args.threads,
        "n_ctx": N_CTX,
        "max_tokens": args.max_tokens,
        "identical_answers": f"{same_text}/{len(results['embedded'])}",
        # Other work on the machine moves the absolute figures; the ratio moves less.
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0], "cores": os.cpu_count()},
        "embedded": emb,
        "llama_server": srv,
        "ratio_embedded_over_server": {
            "decode_tok_s": ratio("decode_tok_s_median"),
            "e2e_tok_s": ratio("e2e_tok_s_median"),
            "ttft": ratio("ttft_ms_median"),
        },
    }
    print(f"model {report['model']}, {args.threads} thread(s), n_ctx {N_CTX}, max_tokens {args.max_tokens}, "
          f"{emb['requests']} requests per side, identical answers {report['identical_answers']}, "
          f"load {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'':14}{'TTFT ms (p50)':>15}{'decode tok/s':>14}{'e2e tok/s':>11}{'tokens':>8}")
    for name, s in (("embedded", emb), ("llama_server", srv)):
        print(f"{name:14}{s['ttft_ms_median']:>15.1f}{s['decode_tok_s_median']:>14.1f}"
              f"{s['e2e_tok_s_median']:>11.1f}{s['tokens']:>8}")
    r = report["ratio_embedded_over_server"]
    print(f"{'ratio e/s':14}{r['ttft']:>15.2f}{r['decode_tok_s']:>14.2f}{r['e2e_tok_s']:>11.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
