"""Creates bench/.peer-venv with LangGraph's in-memory Agent Server and langchain-openai.

Installed only when the bench runs (never a dependency of threadloom), from the pins in
bench/peer/requirements.txt; reinstalled when those pins change. Run alone:
`python bench/peer/install.py`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE.parent / ".peer-venv"
REQUIREMENTS = HERE / "requirements.txt"
STAMP = VENV / ".requirements.sha256"


def langgraph_bin() -> Path:
    return VENV / "bin" / "langgraph"


def ensure_peer_venv(quiet: bool = True) -> Path:
    """Returns the path of the `langgraph` command inside the peer venv."""
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if langgraph_bin().exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return langgraph_bin()
    if not (VENV / "bin" / "python").exists():
        print(f"[bench] creating {VENV} for the LangGraph peer", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("[bench] installing the LangGraph peer (langgraph-cli[inmem], langchain-openai)", file=sys.stderr)
    cmd = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]
    if quiet:
        cmd.insert(4, "-q")
    subprocess.run(cmd, check=True)
    STAMP.write_text(want)
    return langgraph_bin()


if __name__ == "__main__":
    print(ensure_peer_venv(quiet=False))
