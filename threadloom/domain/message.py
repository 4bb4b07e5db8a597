"""The message object: the create request, content parts in request and response shape,
and the wire form."""

from __future__ import annotations

import time
from typing import Annotated, Literal, Union

from pydantic import Field

from threadloom.domain import ids
from threadloom.domain.metadata import check_metadata
from threadloom.domain.model import RequestModel


class ImageFile(RequestModel):
    file_id: str
    detail: Literal["auto", "low", "high"] = "auto"


class ImageUrl(RequestModel):
    url: str
    detail: Literal["auto", "low", "high"] = "auto"


# OpenAI's limit on a message's text.
MAX_TEXT = 256_000


class TextPart(RequestModel):
    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT)


class ImageFilePart(RequestModel):
    type: Literal["image_file"]
    image_file: ImageFile


class ImageUrlPart(RequestModel):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[Union[TextPart, ImageFilePart, ImageUrlPart], Field(discriminator="type")]


class AttachmentTool(RequestModel):
    type: Literal["code_interpreter", "file_search"]


class Attachment(RequestModel):
    file_id: str
    tools: list[AttachmentTool] | None = None


class CreateMessageRequest(RequestModel):
    role: Literal["user", "assistant"]
    content: Union[Annotated[str, Field(max_length=MAX_TEXT)], Annotated[list[ContentPart], Field(min_length=1)]]
    attachments: list[Attachment] | None = None
    metadata: dict[str, str] | None = None


class ModifyMessageRequest(RequestModel):
    metadata: dict[str, str] | None = None


def text_part(value: str) -> dict:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def content_wire(content: str | list) -> list[dict]:
    if isinstance(content, str):
        return [text_part(content)]
    parts = []
    for part in content:
        if part.type == "text":
            parts.append(text_part(part.text))
        elif part.type == "image_file":
            parts.append({"type": "image_file", "image_file": part.image_file.model_dump()})
        else:
            parts.append({"type": "image_url", "image_url": part.image_url.model_dump()})
    return parts


def new_message(
    thread_id: str,
    req: CreateMessageRequest,
    *,
    assistant_id: str | None = None,
    run_id: str | None = None,
    now: int | None = None,
) -> dict:
    now = int(time.time()) if now is None else now
    return {
        "id": ids.message_id(),
        "object": "thread.message",
        "created_at": now,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": now,
        "incomplete_at": None,
        "role": req.role,
        "content": content_wire(req.content),
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": [a.model_dump(exclude_none=True) for a in req.attachments or []],
        "metadata": check_metadata(req.metadata) or {},
    }


def new_assistant_message(thread_id: str, assistant_id: str, run_id: str, now: int) -> dict:
    """A message the model is about to write: in progress, no content yet."""
    return {
        "id": ids.message_id(),
        "object": "thread.message",
        "created_at": now,
        "thread_id": thread_id,
        "status": "in_progress",
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
        "role": "assistant",
        "content": [],
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": [],
        "metadata": {},
    }


def message_text(body: dict) -> str:
    """The text of a message's text parts, joined: what a model sees of it."""
    return "".join(part["text"]["value"] for part in body["content"] if part["type"] == "text")
