"""The processes the bench starts on loopback: the scripted upstream, threadloom, the peer.

Each is a `ServerProcess`: started with its log in the bench's work folder, waited on
until its health URL answers, measured from /proc (CPU seconds, RSS, its whole process
tree), and stopped by its own pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        if ppid == pid:
            kids.append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(_children(p))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


class ServerProcess:
    def __init__(self, name: str, cmd: list[str], port: int, health_path: str, log_dir: Path,
                 env: dict | None = None, cwd: str | Path | None = None) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.health_url = self.url + health_path
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
                                     cwd=str(cwd) if cwd else None, start_new_session=True)
        self._pids: list[int] | None = None

    def wait_ready(self, timeout: float = 60.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n{self.log_tail()}")
            try:
                if httpx.get(self.health_url, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {self.health_url} within {timeout}s; see {self.log_path}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def pids(self, refresh: bool = False) -> list[int]:
        if self._pids is None or refresh:
            self._pids = process_tree(self.proc.pid)
        return self._pids

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids(refresh=True))

    def rss_bytes(self) -> int:
        return rss_bytes(self.pids())

    def stop(self) -> None:
        if self.proc.poll() is None:
            pids = self.pids(refresh=True)
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only what it started
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(timeout=5)
        self._log.close()


def start_upstream(log_dir: Path) -> ServerProcess:
    port = free_port()
    cmd = [sys.executable, str(REPO / "tests" / "scripted_upstream.py"), "--port", str(port)]
    return ServerProcess("upstream", cmd, port, "/health", log_dir).wait_ready()


def start_threadloom(log_dir: Path, database: str, upstream_v1: str, label: str) -> ServerProcess:
    port = free_port()
    cmd = [sys.executable, "-m", "threadloom.cli", "serve", "--port", str(port), "--database", database,
           "--upstream", upstream_v1, "--log-level", "warning"]
    return ServerProcess(f"threadloom-{label}", cmd, port, "/healthz", log_dir, cwd=REPO).wait_ready(90)


def start_peer(log_dir: Path, langgraph_bin: Path, upstream_v1: str, n_jobs: int) -> ServerProcess:
    """LangGraph's in-memory Agent Server (`langgraph dev`) serving bench/peer/graph.py,
    run from a scratch copy so its on-disk dev state never lands in the repo."""
    work = Path(tempfile.mkdtemp(prefix="peer-", dir=log_dir))
    for name in ("graph.py", "langgraph.json"):
        shutil.copy(REPO / "bench" / "peer" / name, work / name)
    port = free_port()
    env = {
        "PEER_UPSTREAM_URL": upstream_v1,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "LANGSMITH_TRACING_V2": "false",
        "LANGGRAPH_DISABLE_TELEMETRY": "true",
        "LOG_LEVEL": "WARNING",
    }
    cmd = [str(langgraph_bin), "dev", "--port", str(port), "--no-browser", "--no-reload",
           "--n-jobs-per-worker", str(n_jobs), "--server-log-level", "WARNING"]
    return ServerProcess(f"peer-{n_jobs}", cmd, port, "/ok", log_dir, env=env, cwd=work).wait_ready(120)


def create_postgres_database(name: str, host: str = "127.0.0.1", port: int = 5432) -> str | None:
    """Creates database `name` (dropping an old one); returns its URL, or None when no
    PostgreSQL answers on loopback."""
    base = ["psql", "-h", host, "-p", str(port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    if shutil.which("psql") is None:
        return None
    try:
        subprocess.run(base + ["-c", f'DROP DATABASE IF EXISTS "{name}"'], check=True, capture_output=True, timeout=30)
        subprocess.run(base + ["-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError):
        return None
    return f"postgresql://postgres@{host}:{port}/{name}"


def drop_postgres_database(name: str, host: str = "127.0.0.1", port: int = 5432) -> None:
    base = ["psql", "-h", host, "-p", str(port), "-U", "postgres", "-d", "postgres", "-q"]
    subprocess.run(base + ["-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True, timeout=30)
