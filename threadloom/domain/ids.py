"""Object ids: a type prefix and 24 random base62 characters, as OpenAI's look.

Randomness comes from os.urandom in 4 KiB draws: one system call per couple of hundred
ids rather than one per id (five ids per run)."""

import os

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_BYTES = 18  # 144 bits: more than the 143 bits 24 base62 characters can hold
_pool = b""


def _random_int() -> int:
    global _pool
    if len(_pool) < _ID_BYTES:
        _pool = os.urandom(4096)
    chunk, _pool = _pool[:_ID_BYTES], _pool[_ID_BYTES:]
    return int.from_bytes(chunk, "big")


def new_id(prefix: str) -> str:
    raw = _random_int()
    chars = []
    for _ in range(24):
        raw, rem = divmod(raw, 62)
        chars.append(_ALPHABET[rem])
    return prefix + "".join(chars)


def assistant_id() -> str:
    return new_id("asst_")


def thread_id() -> str:
    return new_id("thread_")


def message_id() -> str:
    return new_id("msg_")


def run_id() -> str:
    return new_id("run_")


def step_id() -> str:
    return new_id("step_")


def call_id() -> str:
    return new_id("call_")


def file_id() -> str:
    return new_id("file-")


def vector_store_id() -> str:
    return new_id("vs_")


def file_batch_id() -> str:
    return new_id("vsfb_")
