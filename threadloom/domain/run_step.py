"""Run steps: message creation and tool calls."""

from __future__ import annotations

from threadloom.domain import ids


def _new_step(run: dict, step_type: str, details: dict, now: int) -> dict:
    return {
        "id": ids.step_id(),
        "object": "thread.run.step",
        "created_at": now,
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "type": step_type,
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }


def new_message_step(run: dict, message_id: str, now: int) -> dict:
    return _new_step(run, "message_creation", {"type": "message_creation", "message_creation": {"message_id": message_id}}, now)


def new_tool_calls_step(run: dict, now: int) -> dict:
    return _new_step(run, "tool_calls", {"type": "tool_calls", "tool_calls": []}, now)


def function_call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments, "output": None}}


# The one value of `include[]` the API defines: file_search results with their chunks' text.
SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def step_wire(body: dict, with_search_content: bool) -> dict:
    """A step as the API returns it: file_search results carry their content only when
    asked (`include[]`); the stored step always has it (the engine shows it to the model)."""
    if with_search_content or body["type"] != "tool_calls":
        return body
    calls = body["step_details"]["tool_calls"]
    if not any(c["type"] == "file_search" and c["file_search"].get("results") for c in calls):
        return body
    stripped = []
    for call in calls:
        if call["type"] == "file_search" and call["file_search"].get("results"):
            results = [{k: v for k, v in r.items() if k != "content"} for r in call["file_search"]["results"]]
            call = dict(call, file_search=dict(call["file_search"], results=results))
        stripped.append(call)
    return dict(body, step_details=dict(body["step_details"], tool_calls=stripped))
