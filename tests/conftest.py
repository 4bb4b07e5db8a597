"""Shared fixtures: real processes on loopback ports.

- `upstream`: the scripted OpenAI-compatible server (tests/scripted_upstream.py), a test
  double standing in for the LLM: a test scripts what the model answers and reads back
  what the model was sent.
- `server`: `threadloom serve` as a real process, routed to `upstream`, on SQLite by
  default or on PostgreSQL when THREADLOOM_TEST_DATABASE is a postgresql:// URL (a
  fresh database is created for the session).
- `client`: the official `openai` SDK pointed at the server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the model test double ----------------------------------------------------


@dataclass
class Upstream:
    url: str  # base URL ending in /v1
    root: str
    proc: subprocess.Popen | None = None

    def script(self, *responses: dict, model: str | None = None) -> None:
        body: dict = {"responses": list(responses)}
        if model:
            body["model"] = model
        httpx.post(self.root + "/__script", json=body).raise_for_status()

    def default(self, reply: dict) -> None:
        httpx.post(self.root + "/__default", json=reply).raise_for_status()

    def requests(self) -> list[dict]:
        return httpx.get(self.root + "/__requests").json()

    def reset(self) -> None:
        httpx.post(self.root + "/__reset").raise_for_status()


def start_upstream() -> Upstream:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(TESTS / "scripted_upstream.py"), "--port", str(port)])
    root = f"http://127.0.0.1:{port}"
    wait_http(root + "/health", proc)
    return Upstream(url=root + "/v1", root=root, proc=proc)


@pytest.fixture(scope="session")
def upstream_process():
    up = start_upstream()
    yield up
    stop(up.proc)


@pytest.fixture
def upstream(upstream_process):
    upstream_process.reset()
    yield upstream_process
    upstream_process.reset()


# -- databases ----------------------------------------------------------------


def test_database_url() -> str | None:
    return os.environ.get("THREADLOOM_TEST_DATABASE") or None


def _pg_admin(url: str, statement: str) -> None:
    import asyncpg

    async def run():
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@dataclass
class DatabaseHandle:
    url: str
    cleanup: list = field(default_factory=list)


def make_database(tmp_dir: Path) -> DatabaseHandle:
    """A fresh, empty database of the kind under test."""
    base = test_database_url()
    if base and base.startswith("postgres"):
        name = "threadloom_test_" + uuid.uuid4().hex[:10]
        _pg_admin(base, f'CREATE DATABASE "{name}"')
        prefix, _, _ = base.rpartition("/")
        handle = DatabaseHandle(f"{prefix}/{name}")
        handle.cleanup.append(lambda: _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return handle
    return DatabaseHandle(f"sqlite:///{tmp_dir / ('threadloom-' + uuid.uuid4().hex[:8] + '.db')}")


# -- the server -----------------------------------------------------------------


@dataclass
class Server:
    url: str
    database: str
    proc: subprocess.Popen
    log_path: Path

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(tmp_dir: Path, database: str, *args: str, env: dict | None = None) -> Server:
    port = free_port()
    log_path = tmp_dir / f"server-{port}.log"
    cmd = [sys.executable, "-m", "threadloom.cli", "serve", "--port", str(port), "--database", database, *args]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("THREADLOOM_API_KEYS", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=tmp_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc)
    except RuntimeError:
        stop(proc)
        raise RuntimeError(f"server did not start:\n{log_path.read_text(errors='replace')}")
    return Server(url, database, proc, log_path)


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    """Start extra servers (other flags, keys, a second process on one database)."""
    started: list[Server] = []
    handles: list[DatabaseHandle] = []
    tmp_dir = tmp_path_factory.mktemp("servers")

    def factory(*args: str, database: str | None = None, env: dict | None = None, keep: bool = False) -> Server:
        """`keep`: the server lives for the session; others stop when their test module ends
        (dozens of idle servers would hold more PostgreSQL connections than it allows)."""
        if database is None:
            handle = make_database(tmp_dir)
            handles.append(handle)
            database = handle.url
        server = start_server(tmp_dir, database, *args, env=env)
        started.append((server, keep))
        return server

    factory.tmp_dir = tmp_dir
    factory.new_database = lambda: handles.append(make_database(tmp_dir)) or handles[-1].url
    factory.started = started
    yield factory
    for server, _ in started:
        stop(server.proc)
    for handle in handles:
        for fn in handle.cleanup:
            fn()


@pytest.fixture(scope="module", autouse=True)
def stop_module_servers(server_factory):
    """The servers a test module started stop when it ends (session servers excepted)."""
    first = len(server_factory.started)
    yield
    for server, keep in server_factory.started[first:]:
        if not keep:
            stop(server.proc)


@pytest.fixture(scope="session")
def server(server_factory, upstream_process):
    return server_factory("--upstream", upstream_process.url, keep=True)


@pytest.fixture
def client(server):
    from openai import OpenAI

    with OpenAI(base_url=server.v1, api_key="test-key", max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def http(server):
    """Plain HTTP to /v1, for raw bodies, headers and SSE framing."""
    with httpx.Client(base_url=server.v1, timeout=30, headers={"OpenAI-Beta": "assistants=v2"}) as c:
        yield c
