"""The assistant object: its create/modify requests and its wire form."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field

from threadloom.domain import ids
from threadloom.domain.metadata import check_metadata
from threadloom.domain.model import RequestModel
from threadloom.domain.tools import (
    ResponseFormat,
    Tool,
    ToolResources,
    response_format_wire,
    tool_resources_wire,
    tools_wire,
)

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class _AssistantFields(RequestModel):
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256000)
    reasoning_effort: ReasoningEffort | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormat | None = None


class CreateAssistantRequest(_AssistantFields):
    model: str = Field(min_length=1)


class ModifyAssistantRequest(_AssistantFields):
    model: str | None = Field(default=None, min_length=1)


def _wire_field(name: str, req: _AssistantFields):
    value = getattr(req, name)
    if name == "tools":
        return tools_wire(value)
    if name == "tool_resources":
        return tool_resources_wire(value)
    if name == "response_format":
        return response_format_wire(value)
    if name == "metadata":
        return check_metadata(value) or {}
    if name in ("temperature", "top_p"):
        return 1.0 if value is None else value
    return value


_WIRE_FIELDS = (
    "name", "description", "model", "instructions", "tools", "tool_resources",
    "metadata", "temperature", "top_p", "response_format",
)


def new_assistant(req: CreateAssistantRequest, assistant_id: str | None = None) -> dict:
    body = {"id": assistant_id or ids.assistant_id(), "object": "assistant", "created_at": int(time.time())}
    for name in _WIRE_FIELDS:
        body[name] = _wire_field(name, req)
    # Kept beside the wire fields: the run engine forwards it to models that support it.
    body["reasoning_effort"] = req.reasoning_effort
    return body


def modify_assistant(body: dict, req: ModifyAssistantRequest) -> dict:
    updated = dict(body)
    for name in req.model_fields_set:
        if name == "model" and req.model is None:
            continue  # model cannot be unset
        if name == "reasoning_effort":
            updated["reasoning_effort"] = req.reasoning_effort
            continue
        updated[name] = _wire_field(name, req)
    return updated


def assistant_wire(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "reasoning_effort"}
