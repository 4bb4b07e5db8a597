"""Request bodies over --max-request-size are refused with 413 in each door's error shape,
whether the size is announced (Content-Length) or only found while reading (chunked)."""

from __future__ import annotations

import httpx
import pytest

from v1_checks import assert_error


@pytest.fixture(scope="module")
def small(server_factory):
    return server_factory("--max-request-size", "2000")


def test_openai_door_refuses_large_bodies(small):
    with httpx.Client(base_url=small.v1, timeout=30) as http:
        big = {"messages": [{"role": "user", "content": "x" * 5000}]}
        error = assert_error(http.post("/threads", json=big), 413, code="request_too_large")
        assert "2000 bytes" in error["message"]

        def chunks():
            for _ in range(10):
                yield b" " * 500  # no Content-Length: found while reading
        r = http.post("/threads", content=chunks(), headers={"Content-Type": "application/json"})
        assert_error(r, 413, code="request_too_large")
        ok = http.post("/threads", json={"messages": [{"role": "user", "content": "small"}]})
        assert ok.status_code == 200


def test_langgraph_door_refuses_large_bodies(small):
    with httpx.Client(base_url=small.url, timeout=30) as http:
        r = http.post("/threads", json={"metadata": {"note": "x" * 5000}})
        assert r.status_code == 413 and "2000 bytes" in r.json()["detail"]
        assert http.post("/threads", json={}).status_code == 200


def test_uploads_have_their_own_limit(small):
    with httpx.Client(base_url=small.v1, timeout=30) as http:
        r = http.post("/files", data={"purpose": "assistants"}, files={"file": ("a.txt", b"x" * 10_000)})
        assert r.status_code == 200, r.text
