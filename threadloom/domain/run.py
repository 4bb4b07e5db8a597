"""The run object: its requests, the effective values it carries, and its wire form."""

from __future__ import annotations

import time

from pydantic import Field

from threadloom.domain import ids
from threadloom.domain.assistant import ReasoningEffort
from threadloom.domain.errors import InvalidRequest
from threadloom.domain.message import CreateMessageRequest
from threadloom.domain.metadata import check_metadata
from threadloom.domain.model import RequestModel
from threadloom.domain.thread import CreateThreadRequest
from threadloom.domain.tools import (
    ResponseFormat,
    Tool,
    ToolChoice,
    ToolResources,
    TruncationStrategy,
    response_format_wire,
    tool_choice_wire,
    tools_wire,
    truncation_wire,
)

RUN_TTL_SECONDS = 600


class _RunOptions(RequestModel):
    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    tools: list[Tool] | None = Field(default=None, max_length=20)
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=256)
    max_completion_tokens: int | None = Field(default=None, ge=256)
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


class CreateRunRequest(_RunOptions):
    reasoning_effort: ReasoningEffort | None = None
    additional_instructions: str | None = None
    additional_messages: list[CreateMessageRequest] | None = None


class CreateThreadAndRunRequest(_RunOptions):
    thread: CreateThreadRequest | None = None
    tool_resources: ToolResources | None = None


class ToolOutput(RequestModel):
    tool_call_id: str | None = None
    output: str | None = None


class SubmitToolOutputsRequest(RequestModel):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class ModifyRunRequest(RequestModel):
    metadata: dict[str, str] | None = None


def _effective_instructions(req: _RunOptions, assistant: dict) -> str | None:
    base = req.instructions if req.instructions is not None else assistant.get("instructions")
    extra = getattr(req, "additional_instructions", None)
    if extra:
        return f"{base}\n\n{extra}" if base else extra
    return base


def _check_tool_choice(tool_choice: str | dict, tools: list[dict]) -> None:
    if isinstance(tool_choice, str):
        if tool_choice == "required" and not tools:
            raise InvalidRequest(
                "Invalid 'tool_choice': 'required' needs at least one tool.", param="tool_choice", code="invalid_value"
            )
        return
    if tool_choice["type"] == "function":
        name = (tool_choice.get("function") or {}).get("name")
        if not name:
            raise InvalidRequest(
                "Missing required parameter: 'tool_choice.function'.", param="tool_choice.function",
                code="missing_required_parameter",
            )
        names = {t["function"]["name"] for t in tools if t["type"] == "function"}
        if name not in names:
            raise InvalidRequest(
                f"Invalid 'tool_choice': function '{name}' is not among the run's tools.",
                param="tool_choice.function.name",
                code="invalid_value",
            )
    elif not any(t["type"] == tool_choice["type"] for t in tools):
        raise InvalidRequest(
            f"Invalid 'tool_choice': tool '{tool_choice['type']}' is not among the run's tools.",
            param="tool_choice.type",
            code="invalid_value",
        )


def new_run(thread_id: str, assistant: dict, req: _RunOptions, now: int | None = None, ttl: int = RUN_TTL_SECONDS) -> dict:
    """A queued run holding the effective values: the assistant's, overridden by the request's."""
    now = int(time.time()) if now is None else now
    tools = tools_wire(req.tools) if req.tools is not None else assistant["tools"]
    tool_choice = tool_choice_wire(req.tool_choice)
    _check_tool_choice(tool_choice, tools)
    temperature = req.temperature if req.temperature is not None else assistant.get("temperature")
    top_p = req.top_p if req.top_p is not None else assistant.get("top_p")
    response_format = (
        response_format_wire(req.response_format)
        if req.response_format is not None
        else assistant.get("response_format", "auto")
    )
    return {
        "id": ids.run_id(),
        "object": "thread.run",
        "created_at": now,
        "thread_id": thread_id,
        "assistant_id": assistant["id"],
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": now + ttl,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": req.model or assistant["model"],
        "instructions": _effective_instructions(req, assistant) or "",
        "tools": tools,
        "tool_resources": assistant.get("tool_resources") or {},
        "metadata": check_metadata(req.metadata) or {},
        "usage": None,
        "temperature": 1.0 if temperature is None else temperature,
        "top_p": 1.0 if top_p is None else top_p,
        "max_prompt_tokens": req.max_prompt_tokens,
        "max_completion_tokens": req.max_completion_tokens,
        "truncation_strategy": truncation_wire(req.truncation_strategy),
        "tool_choice": tool_choice,
        "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
        "response_format": response_format,
    }


def new_run_state(assistant: dict, req: _RunOptions, include: tuple = ()) -> dict:
    """Engine bookkeeping kept beside the wire object. `include`: what the run's create asked
    its steps to carry (file_search results' content)."""
    return {
        "include": list(include),
        "reasoning_effort": getattr(req, "reasoning_effort", None) or assistant.get("reasoning_effort"),
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "turns": 0,
    }
