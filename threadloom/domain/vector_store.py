"""Vector stores, their files and file batches: requests, limits and wire forms."""

from __future__ import annotations

import time
from typing import Annotated, Literal, Union

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from threadloom.domain import ids
from threadloom.domain.errors import InvalidRequest
from threadloom.domain.metadata import check_metadata
from threadloom.domain.model import RequestModel

DEFAULT_CHUNK_TOKENS = 800
DEFAULT_OVERLAP_TOKENS = 400
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


class StaticChunking(RequestModel):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)


class StaticChunkingStrategy(RequestModel):
    type: Literal["static"]
    static: StaticChunking


class AutoChunkingStrategy(RequestModel):
    type: Literal["auto"]


ChunkingStrategy = Annotated[Union[AutoChunkingStrategy, StaticChunkingStrategy], Field(discriminator="type")]


def chunking_wire(strategy: AutoChunkingStrategy | StaticChunkingStrategy | None, param: str = "chunking_strategy") -> dict:
    """The strategy a file is chunked with, as vector store files show it (`auto` is
    shown as the static sizes it stands for)."""
    if strategy is None or strategy.type == "auto":
        size, overlap = DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS
    else:
        size, overlap = strategy.static.max_chunk_size_tokens, strategy.static.chunk_overlap_tokens
        if overlap > size // 2:
            raise InvalidRequest(
                f"Invalid '{param}.static.chunk_overlap_tokens': the overlap ({overlap}) must not exceed half "
                f"of max_chunk_size_tokens ({size}).",
                param=f"{param}.static.chunk_overlap_tokens",
                code="invalid_value",
            )
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


AttributeValue = Union[StrictBool, StrictInt, StrictFloat, StrictStr]
Attributes = dict[str, AttributeValue]


def check_attributes(attributes: dict | None, param: str = "attributes") -> dict | None:
    if attributes is None:
        return None
    if len(attributes) > 16:
        raise InvalidRequest(
            f"Invalid '{param}': too many properties. Expected an object with at most 16 properties, but got an "
            f"object with {len(attributes)} properties instead.",
            param=param,
            code="object_above_max_properties",
        )
    for key, value in attributes.items():
        if len(key) > 64:
            raise InvalidRequest(
                f"Invalid '{param}': attribute key too long. Expected a string with maximum length 64, but got a "
                f"string with length {len(key)} instead.",
                param=f"{param}.{key}",
                code="string_above_max_length",
            )
        if isinstance(value, str) and len(value) > 512:
            raise InvalidRequest(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum length 512, but got a "
                f"string with length {len(value)} instead.",
                param=f"{param}.{key}",
                code="string_above_max_length",
            )
    return attributes


class ExpiresAfter(RequestModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class CreateVectorStoreRequest(RequestModel):
    file_ids: list[str] | None = Field(default=None, max_length=500)
    name: str | None = None
    description: str | None = Field(default=None, max_length=512)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: dict[str, str] | None = None


class UpdateVectorStoreRequest(RequestModel):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: dict[str, str] | None = None


class CreateVectorStoreFileRequest(RequestModel):
    file_id: str
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class UpdateVectorStoreFileRequest(RequestModel):
    attributes: Attributes | None


class CreateFileBatchRequest(RequestModel):
    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[CreateVectorStoreFileRequest] | None = Field(default=None, min_length=1, max_length=2000)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


def expires_at(expires_after: dict | None, last_active_at: int) -> int | None:
    return None if not expires_after else last_active_at + expires_after["days"] * 86400


def empty_counts() -> dict:
    return {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}


def new_vector_store(req: CreateVectorStoreRequest, now: int | None = None) -> dict:
    now = int(time.time()) if now is None else now
    expires_after = req.expires_after.model_dump() if req.expires_after else None
    body = {
        "id": ids.vector_store_id(),
        "object": "vector_store",
        "created_at": now,
        "name": req.name or "",
        "usage_bytes": 0,
        "file_counts": empty_counts(),
        "status": "completed",
        "expires_at": expires_at(expires_after, now),
        "last_active_at": now,
        "metadata": check_metadata(req.metadata) or {},
    }
    if expires_after is not None:  # an object in the spec: absent rather than null
        body["expires_after"] = expires_after
    if req.description is not None:
        body["description"] = req.description
    return body


def new_vector_store_file(vector_store_id: str, file_id: str, chunking: dict, attributes: dict | None, now: int) -> dict:
    return {
        "id": file_id,
        "object": "vector_store.file",
        "usage_bytes": 0,
        "created_at": now,
        "vector_store_id": vector_store_id,
        "status": "in_progress",
        "last_error": None,
        "chunking_strategy": chunking,
        "attributes": attributes or {},
    }


def new_file_batch(vector_store_id: str, now: int) -> dict:
    return {
        "id": ids.file_batch_id(),
        "object": "vector_store.files_batch",
        "created_at": now,
        "vector_store_id": vector_store_id,
        "status": "in_progress",
        "file_counts": empty_counts(),
    }


def counts_of(statuses: dict[str, int]) -> dict:
    counts = empty_counts()
    for status, n in statuses.items():
        counts[status] = n
    counts["total"] = sum(statuses.values())
    return counts


def store_status(body: dict, counts: dict) -> str:
    if body["status"] == "expired":
        return "expired"
    return "in_progress" if counts["in_progress"] else "completed"


def batch_status(body: dict, counts: dict) -> str:
    if body["status"] == "cancelled":
        return "cancelled"
    if counts["in_progress"]:
        return "in_progress"
    if counts["total"] and counts["failed"] == counts["total"]:
        return "failed"
    return "completed"


class ComparisonFilter(RequestModel):
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str
    value: Union[StrictStr, StrictBool, StrictInt, StrictFloat, list[Union[StrictStr, StrictInt, StrictFloat]]]


class CompoundFilter(RequestModel):
    type: Literal["and", "or"]
    filters: list[Union[ComparisonFilter, "CompoundFilter"]]


Filter = Union[ComparisonFilter, CompoundFilter]


class SearchRankingOptions(RequestModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float = Field(default=0.0, ge=0, le=1)


class SearchRequest(RequestModel):
    query: Union[StrictStr, Annotated[list[StrictStr], Field(min_length=1)]]
    rewrite_query: bool = False
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: SearchRankingOptions | None = None
