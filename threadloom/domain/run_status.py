"""The run status machine: one table of allowed transitions."""

from __future__ import annotations

TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled", "expired"})
ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
# The events after which a run stops until someone acts: it finished, or waits for outputs.
STOP_EVENTS = frozenset({"thread.run.requires_action"} | {f"thread.run.{status}" for status in TERMINAL})

TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"in_progress", "cancelling", "cancelled", "failed", "expired"}),
    "in_progress": frozenset({"requires_action", "cancelling", "completed", "incomplete", "failed", "expired"}),
    "requires_action": frozenset({"queued", "cancelling", "expired", "failed"}),
    "cancelling": frozenset({"cancelled", "completed", "incomplete", "failed", "expired"}),
    "completed": frozenset(),
    "incomplete": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}


class IllegalTransition(Exception):
    pass


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"run cannot go from {current} to {new}")


def is_terminal(status: str) -> bool:
    return status in TERMINAL
