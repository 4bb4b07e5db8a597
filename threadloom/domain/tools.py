"""Tool definitions and the run options that refer to them: tool_choice, response_format,
truncation_strategy and tool_resources, as the Assistants API v2 defines them."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, StringConstraints

from threadloom.domain.errors import InvalidRequest
from threadloom.domain.model import RequestModel
from threadloom.domain.vector_store import ChunkingStrategy

FunctionName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]+$", max_length=64, min_length=1)]


class FunctionDefinition(RequestModel):
    name: FunctionName
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None


class FunctionTool(RequestModel):
    type: Literal["function"]
    function: FunctionDefinition


class CodeInterpreterTool(RequestModel):
    type: Literal["code_interpreter"]


class RankingOptions(RequestModel):
    ranker: Literal["auto", "default_2024_08_21"] | None = None
    score_threshold: float = Field(ge=0, le=1)


class FileSearchSettings(RequestModel):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class FileSearchTool(RequestModel):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None


Tool = Annotated[Union[FunctionTool, CodeInterpreterTool, FileSearchTool], Field(discriminator="type")]


def tools_wire(tools: list[Tool] | None) -> list[dict]:
    return [tool.model_dump(exclude_none=True) for tool in tools or []]


class NamedFunction(RequestModel):
    name: str


class NamedToolChoice(RequestModel):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedFunction | None = None


ToolChoice = Union[Literal["none", "auto", "required"], NamedToolChoice]


def tool_choice_wire(choice: ToolChoice | None) -> str | dict:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    return choice.model_dump(exclude_none=True)


class TextFormat(RequestModel):
    type: Literal["text"]


class JsonObjectFormat(RequestModel):
    type: Literal["json_object"]


class JsonSchemaSpec(RequestModel):
    name: FunctionName
    description: str | None = None
    schema_: dict | None = Field(default=None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(RequestModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Union[
    Literal["auto"],
    Annotated[Union[TextFormat, JsonObjectFormat, JsonSchemaFormat], Field(discriminator="type")],
]


def response_format_wire(fmt: ResponseFormat | None) -> str | dict:
    if fmt is None:
        return "auto"
    if isinstance(fmt, str):
        return fmt
    return fmt.model_dump(exclude_none=True, by_alias=True)


class TruncationStrategy(RequestModel):
    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(default=None, ge=1)


def truncation_wire(strategy: TruncationStrategy | None) -> dict:
    if strategy is None:
        return {"type": "auto", "last_messages": None}
    return {"type": strategy.type, "last_messages": strategy.last_messages}


class CodeInterpreterResources(RequestModel):
    file_ids: list[str] = Field(default_factory=list, max_length=20)


class VectorStoreHelper(RequestModel):
    file_ids: list[str] | None = Field(default=None, max_length=10000)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: dict[str, str] | None = None


class FileSearchResources(RequestModel):
    vector_store_ids: list[str] | None = Field(default=None, max_length=1)
    vector_stores: list[VectorStoreHelper] | None = Field(default=None, max_length=1)


class ToolResources(RequestModel):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


def tool_resources_wire(resources: ToolResources | None) -> dict:
    """The wire form. A `vector_stores` helper is kept as given, under that key, for the
    service to turn into a store (services/tool_resources.py) before anything is stored."""
    if resources is None:
        return {}
    out: dict = {}
    if resources.code_interpreter is not None:
        out["code_interpreter"] = {"file_ids": list(dict.fromkeys(resources.code_interpreter.file_ids))}
    if resources.file_search is not None:
        search = resources.file_search
        if search.vector_store_ids and search.vector_stores:
            raise InvalidRequest(
                "Invalid 'tool_resources.file_search': give either 'vector_store_ids' or 'vector_stores', not both.",
                param="tool_resources.file_search",
                code="invalid_value",
            )
        out["file_search"] = {"vector_store_ids": list(search.vector_store_ids or [])}
        if search.vector_stores:
            out["file_search"]["vector_stores"] = list(search.vector_stores)
    return out
