"""Request bodies of the LangGraph Agent Server API. Fields this server does not use are
accepted and ignored (LangGraph's clients send many); wrong types are refused with 422."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel

from threadloom.services.langgraph.metadata import Metadata

StreamMode = Literal[
    "values", "messages", "updates", "events", "tasks", "checkpoints", "debug", "custom",
    "messages-tuple", "tools", "lifecycle",
]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
SortOrder = Literal["asc", "desc", "ASC", "DESC"]


class LangGraphModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Command(LangGraphModel):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(LangGraphModel):
    assistant_id: str
    input: Union[dict, list, str, None] = None
    command: Command | None = None
    config: dict | None = None
    context: dict | None = None
    metadata: Metadata | None = None
    stream_mode: Union[StreamMode, list[StreamMode], None] = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    interrupt_before: Union[Literal["*"], list[str], None] = None
    interrupt_after: Union[Literal["*"], list[str], None] = None
    feedback_keys: list[str] | None = None
    webhook: str | None = None
    checkpoint: dict | None = None
    checkpoint_id: str | None = None
    checkpoint_during: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    multitask_strategy: MultitaskStrategy | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: int | None = Field(default=None, ge=0)


class RunBatch(RootModel[list[RunCreate]]):
    """The body of /runs/batch: a list of run payloads."""


class RunsCancel(LangGraphModel):
    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


class AssistantCreate(LangGraphModel):
    graph_id: str
    assistant_id: str | None = None
    config: dict | None = None
    context: dict | None = None
    metadata: Metadata | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    name: str | None = None
    description: str | None = None


class AssistantPatch(LangGraphModel):
    graph_id: str | None = None
    config: dict | None = None
    context: dict | None = None
    metadata: Metadata | None = None
    name: str | None = None
    description: str | None = None


class AssistantSearch(LangGraphModel):
    metadata: dict | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None


class AssistantCount(LangGraphModel):
    metadata: dict | None = None
    graph_id: str | None = None
    name: str | None = None


class AssistantVersions(LangGraphModel):
    metadata: dict | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class AssistantSetLatest(LangGraphModel):
    version: int


class ThreadTimeToLive(LangGraphModel):
    ttl: float = Field(gt=0)  # minutes
    strategy: Literal["delete", "keep_latest"] = "delete"


# A thread's TTL: minutes (deleted then), or {"ttl": minutes, "strategy": ...}.
ThreadTTLField = Union[Annotated[float, Field(gt=0)], ThreadTimeToLive, None]


class SuperstepUpdate(LangGraphModel):
    values: Any = None
    as_node: str | None = None
    task_id: str | None = None


class Superstep(LangGraphModel):
    updates: list[SuperstepUpdate]


class ThreadCreate(LangGraphModel):
    thread_id: str | None = None
    metadata: Metadata | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    ttl: ThreadTTLField = None
    # State written as if these steps had run: through the graph metadata.graph_id names,
    # or (the built-in graph) messages added to the thread.
    supersteps: list[Superstep] | None = None


class ThreadPatch(LangGraphModel):
    metadata: Metadata | None = None
    ttl: ThreadTTLField = None


class ThreadPrune(LangGraphModel):
    thread_ids: list[str]
    strategy: Literal["delete", "keep_latest"] = "delete"


class ThreadSearch(LangGraphModel):
    metadata: dict | None = None
    values: dict | None = None
    ids: list[str] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None
    extract: dict[str, str] | None = None  # alias: path (services/langgraph/thread_extracts.py)


class ThreadCount(LangGraphModel):
    metadata: dict | None = None
    values: dict | None = None
    status: ThreadStatus | None = None


class ThreadHistory(LangGraphModel):
    limit: int = Field(default=10, ge=1, le=1000)
    before: Union[str, dict, None] = None
    metadata: dict | None = None
    checkpoint: dict | None = None


class ThreadStateUpdate(LangGraphModel):
    values: Union[dict, list, None] = None
    as_node: str | None = None
    checkpoint: dict | None = None
    checkpoint_id: str | None = None


class ThreadStateAtCheckpoint(LangGraphModel):
    checkpoint: dict
    subgraphs: bool | None = None


def _namespace_labels(labels: list[str]) -> list[str]:
    for label in labels:
        if not label or "." in label:
            raise ValueError(f"Namespace label {label!r} must be a non-empty string without periods")
    return labels


Namespace = Annotated[list[str], AfterValidator(_namespace_labels)]


class StorePut(LangGraphModel):
    namespace: Namespace
    key: str = Field(min_length=1)
    value: dict
    index: Union[Literal[False], list[str], None] = None
    ttl: float | None = Field(default=None, gt=0)


class StoreDelete(LangGraphModel):
    namespace: Namespace = []
    key: str = Field(min_length=1)


class StoreSearch(LangGraphModel):
    namespace_prefix: Namespace | None = None
    filter: dict | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(LangGraphModel):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class CronRun(LangGraphModel):
    """What a cron's runs are made with, and when it stops."""

    timezone: str | None = None
    end_time: datetime | None = None
    input: Union[dict, list, None] = None
    metadata: Metadata | None = None
    config: dict | None = None
    context: dict | None = None
    webhook: str | None = None
    interrupt_before: Union[Literal["*"], list[str], None] = None
    interrupt_after: Union[Literal["*"], list[str], None] = None
    on_run_completed: Literal["delete", "keep"] | None = None
    stream_mode: Union[StreamMode, list[StreamMode], None] = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None


class CronCreate(CronRun):
    assistant_id: str
    schedule: str = Field(min_length=1, max_length=256)
    multitask_strategy: MultitaskStrategy | None = None
    enabled: bool = True


class CronPatch(CronRun):
    schedule: str | None = Field(default=None, min_length=1, max_length=256)
    enabled: bool | None = None


CRON_SORT = Literal["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"]


class CronSearch(LangGraphModel):
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: CRON_SORT | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None


class CronCount(LangGraphModel):
    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: dict | None = None
