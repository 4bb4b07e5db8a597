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


def _held(sock, seconds: float, trickle: bytes, every: float) -> float:
    """Keep sending `trickle` every `every` s; how long until the server closed the socket."""
    import socket as _socket
    import time

    started = time.monotonic()
    sock.settimeout(every)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(1024) == b"":
                return time.monotonic() - started
        except _socket.timeout:
            pass
        except OSError:
            return time.monotonic() - started
        try:
            sock.sendall(trickle)
        except OSError:
            return time.monotonic() - started
    return float("inf")


def test_slow_clients_are_cut_off_without_tracebacks(server_factory):
    import socket

    server = server_factory("--read-timeout", "1")
    port = int(server.url.rsplit(":", 1)[1])
    silent = socket.create_connection(("127.0.0.1", port))
    slow_headers = socket.create_connection(("127.0.0.1", port))
    slow_headers.sendall(b"POST /v1/threads HTTP/1.1\r\nHost: x\r\n")
    slow_body = socket.create_connection(("127.0.0.1", port))
    slow_body.sendall(b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{")
    assert _held(silent, 10, b"", 0.2) < 5
    assert _held(slow_headers, 10, b"X-Slow: 1\r\n", 0.3) < 5
    assert _held(slow_body, 10, b" ", 0.3) < 6  # 1 s + 64 KiB at 64 KiB/s
    with httpx.Client(base_url=server.v1, timeout=30) as http:
        assert http.post("/threads", json={}).status_code == 200
    log = server.log()
    assert "Traceback" not in log, log[-2000:]
    assert "did not arrive in time" in log
