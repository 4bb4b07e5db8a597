"""Object ids: a type prefix and 24 random base62 characters, as OpenAI's look."""

import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id(prefix: str) -> str:
    raw = int.from_bytes(secrets.token_bytes(18), "big")
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
