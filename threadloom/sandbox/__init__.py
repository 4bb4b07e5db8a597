"""Running untrusted code (code_interpreter) inside an OS-level sandbox."""

from threadloom.sandbox.bubblewrap import sandbox_problem
from threadloom.sandbox.sessions import CodeSessions, Execution, SandboxUnavailable

__all__ = ["CodeSessions", "Execution", "SandboxUnavailable", "sandbox_problem"]
