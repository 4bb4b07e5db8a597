"""Code sessions: one Jupyter kernel (ipykernel, spoken to with jupyter_client) per thread,
started inside the sandbox on first use, keeping its state between executions like a
notebook, closed after an idle period or when the server stops.

The kernel talks over unix sockets (`ipc` transport) in a folder bound into the sandbox:
the sandbox has a network namespace of its own, with no way out.
"""

from __future__ import annotations

import asyncio
import base64
import os
import logging
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from threadloom.sandbox import bubblewrap

log = logging.getLogger("threadloom.sandbox")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
START_SECONDS = 60.0
INTERRUPT_GRACE = 2.0  # an interrupted execution gets this long to stop before the kernel is killed
MAX_OUTPUT_FILE = 50 * 1024 * 1024
PROCESS_MARGIN = 8  # tasks the kernel needs free to go on working

# Sessions run as uids of their own from this range (no account uses them).
FIRST_UID, UIDS = 1_600_000, 100_000  # files the code writes that are larger are not returned


class SandboxUnavailable(Exception):
    pass


@dataclass
class Execution:
    logs: str
    images: list[bytes] = field(default_factory=list)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    error: str | None = None


class _SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command runs inside the sandbox."""

    sandbox_dirs: tuple[Path, Path] = (Path("."), Path("."))
    sandbox_limits = bubblewrap.Limits()
    sandbox_uid = bubblewrap.SANDBOX_UID

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        import os
        import sys

        session, runtime = self.sandbox_dirs
        # Written (0600, root's) just before: the kernel runs as the sandbox's user.
        os.chown(self.connection_file, self.sandbox_uid, self.sandbox_uid)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]
        return bubblewrap.command(session, runtime, argv, self.sandbox_limits, self.sandbox_uid)


class _Session:
    def __init__(self, root: Path, limits: bubblewrap.Limits, uid: int):
        self.uid = uid
        self.data = root / "data"
        self.runtime = root / "run"
        self.limits = limits
        self.manager: _SandboxedKernelManager | None = None
        self.client = None
        self.used = time.monotonic()
        self.lock = asyncio.Lock()
        self.running: str | None = None  # the message id of the execution under way

    async def start(self) -> None:
        bubblewrap.prepare(self.data, self.runtime, self.uid)
        manager = _SandboxedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(self.runtime / "kernel"),
            connection_file=str(self.runtime / "connection.json"),
        )
        manager.sandbox_dirs = (self.data, self.runtime)
        manager.sandbox_limits = self.limits
        manager.sandbox_uid = self.uid
        # Signals sent to the sandbox's outer process do not reach the kernel inside it.
        manager.kernel_spec.interrupt_mode = "message"
        # The kernel's banner and warnings are not the server's log.
        await manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=START_SECONDS)
        except RuntimeError as exc:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
            raise SandboxUnavailable(f"the code session did not start: {exc}") from None
        self.manager, self.client = manager, client

    async def alive(self) -> bool:
        return self.manager is not None and await self.manager.is_alive()

    async def stop(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
        if self.manager is not None:
            try:
                await self.manager.shutdown_kernel(now=True)
            except Exception:
                log.debug("kernel shutdown", exc_info=True)
        self.manager = self.client = None

    def snapshot(self) -> dict[str, tuple[int, int]]:
        out = {}
        for path in self.data.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    stat = path.stat()
                    out[str(path.relative_to(self.data))] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue
        return out


def _tasks_of(uid: int) -> int:
    """Processes and threads running as `uid` (what its RLIMIT_NPROC counts)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            total += int(fields.get("Threads", "1").strip() or 1)
    return total


class CodeSessions:
    def __init__(self, root: Path, *, idle_seconds: float = 3600, timeout: float = 60, memory_mb: int = 2048,
                 max_processes: int = 64, max_file_mb: int = 100, cpu_seconds: int = 600):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.idle_seconds = idle_seconds
        self.timeout = timeout
        self.limits = bubblewrap.Limits(memory_mb, max_processes, max_file_mb, cpu_seconds)
        self._sessions: dict[str, _Session] = {}
        self._next_uid = FIRST_UID
        self._reaper: asyncio.Task | None = None

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            safe = re.sub(r"[^A-Za-z0-9_-]", "_", session_id)
            self._next_uid = FIRST_UID + (self._next_uid - FIRST_UID + 1) % UIDS
            session = self._sessions[session_id] = _Session(self.root / safe, self.limits, self._next_uid)
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())
        return session

    async def execute(self, session_id: str, code: str, inputs: dict[str, bytes] | None = None) -> Execution:
        if bubblewrap.sandbox_problem() is not None:
            raise SandboxUnavailable(bubblewrap.sandbox_problem())
        session = self._session(session_id)
        async with session.lock:
            session.used = time.monotonic()
            if not await session.alive():
                await session.stop()
                await session.start()
            await asyncio.to_thread(self._write_inputs, session, inputs or {})
            before = await asyncio.to_thread(session.snapshot)
            result = await self._run(session, code)
            result.files = await asyncio.to_thread(self._written, session, before)
            if await asyncio.to_thread(_tasks_of, session.uid) >= self.limits.max_processes - PROCESS_MARGIN:
                # Children left behind (a fork bomb's, zombies the kernel never reaps) hold the
                # session's process limit: the kernel could not even start a thread.
                await session.stop()
                note = "The code left too many processes behind; the session was restarted and its state is lost."
                result.error = f"{result.error}\n{note}" if result.error else note
            session.used = time.monotonic()
            return result

    @staticmethod
    def _write_inputs(session: _Session, inputs: dict[str, bytes]) -> None:
        import os

        for name, data in inputs.items():
            path = session.data / Path(name).name
            if path.exists() and path.stat().st_size == len(data):
                continue
            path.write_bytes(data)
            os.chown(path, session.uid, session.uid)

    @staticmethod
    def _written(session: _Session, before: dict) -> list[tuple[str, bytes]]:
        out = []
        for name, stamp in session.snapshot().items():
            if before.get(name) != stamp and stamp[1] <= MAX_OUTPUT_FILE:
                out.append((name, (session.data / name).read_bytes()))
        return out

    async def _run(self, session: _Session, code: str) -> Execution:
        client = session.client
        # stop_on_error=False: an error (or an interrupt) must not abort the next execution.
        msg_id = session.running = client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        logs: list[str] = []
        images: list[bytes] = []
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await self._timed_out(session, msg_id, logs, images)
            try:
                msg = await client.get_iopub_msg(timeout=min(remaining, 1.0))
            except Exception:  # queue.Empty: nothing yet
                if not await session.alive():
                    await session.stop()
                    return Execution("".join(logs), images, error="The code session ended (the process was killed or ran out of memory); its state is lost.")
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                logs.append(content.get("text", ""))
            elif kind in ("display_data", "execute_result"):
                data = content.get("data", {})
                if "image/png" in data:
                    images.append(base64.b64decode(data["image/png"]))
                elif kind == "execute_result" and "text/plain" in data:
                    logs.append(data["text/plain"] + "\n")
            elif kind == "error":
                logs.append(_ANSI.sub("", "\n".join(content.get("traceback", []))) + "\n")
            elif kind == "status" and content.get("execution_state") == "idle":
                session.running = None
                return Execution("".join(logs), images)

    async def _timed_out(self, session: _Session, msg_id: str, logs: list[str], images: list[bytes]) -> Execution:
        await self._interrupt(session, msg_id)
        return Execution("".join(logs), images, error=f"The execution timed out after {self.timeout:g} s and was stopped.")

    async def _interrupt(self, session: _Session, msg_id: str | None) -> None:
        """Interrupt what runs; a kernel that does not stop in time is killed (its state is
        lost; the next execution starts a new one)."""
        if session.manager is None:
            return
        try:
            await session.manager.interrupt_kernel()
            if msg_id is not None:
                await asyncio.wait_for(self._idle(session, msg_id), INTERRUPT_GRACE)
                return
        except Exception:
            pass
        await session.stop()

    @staticmethod
    async def _idle(session: _Session, msg_id: str) -> None:
        """Until the interrupted execution's own `idle` (the interrupt request has its own)."""
        while True:
            msg = await session.client.get_iopub_msg(timeout=INTERRUPT_GRACE)
            if (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
                    and msg.get("parent_header", {}).get("msg_id") == msg_id):
                return

    async def interrupt(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            await self._interrupt(session, session.running)

    async def close(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            await session.stop()
            shutil.rmtree(session.data.parent, ignore_errors=True)

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for session_id in list(self._sessions):
            await self.close(session_id)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.idle_seconds / 2))
            now = time.monotonic()
            for session_id, session in list(self._sessions.items()):
                if not session.lock.locked() and now - session.used > self.idle_seconds:
                    await self.close(session_id)
