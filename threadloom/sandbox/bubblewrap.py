"""The command line that starts a process inside the sandbox, and whether this host can.

What the sandbox is made of, outermost first:
- `unshare --mount` (as root): a private mount namespace in which the Python installation
  and the venv are bind-mounted onto a staging folder any user can traverse (the server's
  own Python may live under /root, which the sandbox's user could not open);
- `setpriv`: an unprivileged uid/gid of the session's own, with no capabilities, so the
  kernel's process limit applies (RLIMIT_NPROC is not enforced for root, and it counts per
  uid: one session's fork bomb must not stop the others);
- `prlimit`: address space, processes, file size and CPU seconds;
- `bwrap` (bubblewrap): new user, pid, network, IPC, UTS and cgroup namespaces (no network at
  all), an empty root with only /usr, the Python installation and the venv read-only, a
  fake /etc/passwd, its own /proc and /dev, a tmpfs /tmp, the session's folder as
  /mnt/data, no environment but a few variables, killed with its parent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SANDBOX_UID = 65534  # the check's; each session gets a uid of its own (sessions.py)
TOOLS = ("unshare", "setpriv", "prlimit", "bwrap", "mount")


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    max_processes: int = 64
    max_file_mb: int = 100
    cpu_seconds: int = 600


def python_paths() -> tuple[str, str]:
    """(the Python installation, the venv or prefix) the kernel runs from."""
    home = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
    return home, sys.prefix


def command(session_dir: Path, runtime_dir: Path, argv: list[str], limits: Limits, uid: int = SANDBOX_UID) -> list[str]:
    """`argv` run in the sandbox: /mnt/data is session_dir, runtime_dir (the kernel's
    connection file and sockets) is seen at its own path."""
    home, prefix = python_paths()
    stage = runtime_dir.parent / "stage"
    mounts = [(home, stage / "python")]
    if not prefix.startswith(home + os.sep) and prefix != home:
        mounts.append((prefix, stage / "prefix"))
    binds = []
    for source, staged in mounts:
        binds += ["--ro-bind", str(staged), source]
    sandbox = [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
        "prlimit", f"--as={limits.memory_mb * 1024 * 1024}", f"--nproc={limits.max_processes}",
        f"--fsize={limits.max_file_mb * 1024 * 1024}", f"--cpu={limits.cpu_seconds}", "--",
        "bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
        "--setenv", "IPYTHONDIR", "/tmp/ipython", "--setenv", "OPENBLAS_NUM_THREADS", "1", "--setenv", "OMP_NUM_THREADS", "1",
        "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin", *binds,
        "--ro-bind", str(runtime_dir / "passwd"), "/etc/passwd", "--ro-bind-try", "/etc/fonts", "/etc/fonts",
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--bind", str(session_dir), "/mnt/data", "--bind", str(runtime_dir), str(runtime_dir),
        "--chdir", "/mnt/data", "--", *argv,
    ]
    stage_script = " && ".join(f'mount --bind "${2 * i + 1}" "${2 * i + 2}"' for i in range(len(mounts)))
    stage_args = [str(p) for pair in mounts for p in pair]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            stage_script + f' && shift {2 * len(mounts)} && exec "$@"', "sh", *stage_args, *sandbox]


def prepare(session_dir: Path, runtime_dir: Path, uid: int = SANDBOX_UID) -> None:
    """The folders a sandbox needs, owned by its user where it writes."""
    for folder in (session_dir, runtime_dir):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, uid, uid)
    stage = runtime_dir.parent / "stage"
    for name in ("python", "prefix"):
        (stage / name).mkdir(parents=True, exist_ok=True)
    for folder in (runtime_dir.parent, stage, stage / "python", stage / "prefix"):
        folder.chmod(0o755)
    (runtime_dir / "passwd").write_text(f"sandbox:x:{uid}:{uid}::/tmp:/usr/sbin/nologin\n")


@lru_cache(maxsize=1)
def sandbox_problem() -> str | None:
    """Why code cannot run sandboxed on this host, or None (checked once, by running
    `true`-like Python in a sandbox)."""
    if sys.platform != "linux":
        return "the sandbox needs Linux namespaces"
    if os.geteuid() != 0:
        return "the sandbox is set up by root (it mounts the Python installation and drops to an unprivileged user)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (install bubblewrap and util-linux: apt-get install bubblewrap)"
    try:
        import ipykernel  # noqa: F401
        import jupyter_client  # noqa: F401
    except ImportError as exc:
        return f"the kernel packages are missing: {exc}"
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="threadloom-sandbox-check-"))
    try:
        root.chmod(0o755)
        session, runtime = root / "data", root / "run"
        prepare(session, runtime)
        argv = [sys.executable, "-c", "import os; print(os.getuid())"]
        done = subprocess.run(command(session, runtime, argv, Limits()), capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or done.stdout.strip() != str(SANDBOX_UID):
            return f"a test process could not start in the sandbox: {(done.stderr or done.stdout).strip()[:300]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"a test process could not start in the sandbox: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return None
