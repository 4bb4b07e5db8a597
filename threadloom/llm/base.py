"""The one small protocol every model backend speaks.

The engine sends a chat request in OpenAI chat-completions shape and reads a stream of
chunks. Backends: `openai_compat` (any /v1/chat/completions server), `embedded` (a local
GGUF model). Tests use a scripted OpenAI-compatible server behind `openai_compat`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Protocol, Union


@dataclass
class ChatRequest:
    model: str  # the name the backend should use
    messages: list[dict]  # chat-completions messages: system/user/assistant(+tool_calls)/tool
    tools: list[dict] | None = None  # [{"type":"function","function":{name,description,parameters,strict}}]
    tool_choice: str | dict | None = None  # "none"|"auto"|"required"|{"type":"function","function":{"name"}}
    parallel_tool_calls: bool | None = None
    response_format: dict | None = None  # {"type":"text"|"json_object"} | {"type":"json_schema","json_schema":{...}}
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None  # completion budget left for this model call
    reasoning_effort: str | None = None  # for reasoning models; others ignore it


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCallDelta:
    """A fragment of a tool call. `id` and `name` arrive once (first fragment of that
    index); `arguments` fragments are concatenated."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Finish:
    reason: str  # "stop" | "tool_calls" | "length" | "content_filter"


Chunk = Union[TextDelta, ToolCallDelta, Usage, Finish]


class ModelError(Exception):
    """A model call that failed. `code` is what the run's last_error carries:
    "server_error" or "rate_limit_exceeded"."""

    def __init__(self, message: str, code: str = "server_error"):
        super().__init__(message)
        self.message = message
        self.code = code


class ModelBackend(Protocol):
    # Tokens the model can see at once (prompt + completion); None when unknown.
    context_window: int | None
    # Whether the model chooses tools well enough to be offered the built-in ones
    # (file_search); when not, the engine runs them for it (engine/executor.py).
    calls_tools: bool

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream one model turn. Raises ModelError on failure (before or mid-stream)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's tokenizer (for budgets and truncation)."""
        ...

    async def aclose(self) -> None: ...
