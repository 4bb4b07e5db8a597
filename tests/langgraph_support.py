"""Helpers for the LangGraph door's tests: the official async `langgraph-sdk` client,
driven with asyncio.run from plain (sync) tests."""

from __future__ import annotations

import asyncio
import time

import httpx
from langgraph_sdk import get_client


def run(coro):
    return asyncio.run(coro)


def client(server):
    return get_client(url=server.url, api_key=None)


async def collect(stream) -> list:
    return [(part.event, part.data) for part in [p async for p in stream]]


def events(parts: list, name: str) -> list:
    return [data for event, data in parts if event == name]


async def wait_status(lg, thread_id: str, run_id: str, statuses, timeout: float = 20.0) -> dict:
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        run = await lg.runs.get(thread_id, run_id)
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} stayed {run['status']}, wanted {statuses}")
        await asyncio.sleep(0.05)


def slow_reply(text: str = "one two three four five six seven eight nine ten", delay: float = 0.15, **extra) -> dict:
    return {"text": text, "chunk_size": 4, "delay": delay, **extra}


def raw_sse(url: str, body: dict, headers: dict | None = None) -> tuple[httpx.Response, bytes]:
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", url, json=body, headers=headers or {}) as r:
            return r, r.read()
