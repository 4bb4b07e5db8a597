"""The thread object: create/modify requests and the wire form."""

from __future__ import annotations

import time


from threadloom.domain import ids
from threadloom.domain.message import CreateMessageRequest
from threadloom.domain.metadata import check_metadata
from threadloom.domain.model import RequestModel
from threadloom.domain.tools import ToolResources, tool_resources_wire


class CreateThreadRequest(RequestModel):
    messages: list[CreateMessageRequest] | None = None
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None


class ModifyThreadRequest(RequestModel):
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None


def new_thread(req: CreateThreadRequest, thread_id: str | None = None) -> dict:
    return {
        "id": thread_id or ids.thread_id(),
        "object": "thread",
        "created_at": int(time.time()),
        "tool_resources": tool_resources_wire(req.tool_resources),
        "metadata": check_metadata(req.metadata) or {},
    }


def modify_thread(body: dict, req: ModifyThreadRequest) -> dict:
    updated = dict(body)
    if "metadata" in req.model_fields_set:
        updated["metadata"] = check_metadata(req.metadata) or {}
    if "tool_resources" in req.model_fields_set:
        updated["tool_resources"] = tool_resources_wire(req.tool_resources)
    return updated
