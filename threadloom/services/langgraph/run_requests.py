"""A LangGraph run request, validated and prepared before it touches the store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from threadloom.services.langgraph.assistants import check_config, resolve_assistant_id
from threadloom.services.langgraph.catalog import GraphCatalog
from threadloom.services.langgraph.errors import CONFIGURABLE_AND_CONTEXT, BadRequest, Unprocessable
from threadloom.services.langgraph.ids import check_thread_id, uuid7
from threadloom.services.langgraph.messages import ParsedInput, parse_input
from threadloom.services.langgraph.requests import RunCreate

REJECT_DETAIL = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."


@dataclass
class Prepared:
    """A validated run request, before it touches the store."""

    run_id: str
    thread_id: str
    assistant_id: str
    payload: RunCreate
    modes: list[str]
    strategy: str
    if_not_exists: str
    temporary: bool
    parsed: ParsedInput
    resume: object
    has_resume: bool
    parse_error: Exception | None = None



def refuse_webhook(webhook: str | None) -> None:
    """Refused rather than accepted and never called."""
    if webhook is not None:
        raise Unprocessable("webhook: this server does not call webhooks; stream, join or poll the run instead")


def prepare_run(catalog: GraphCatalog, thread_id: str | None, payload: RunCreate) -> Prepared:
    stateless = thread_id is None
    if not stateless:
        check_thread_id(thread_id)
    assistant_id = resolve_assistant_id(payload.assistant_id, catalog.ids)
    refuse_webhook(payload.webhook)
    command = payload.command
    has_resume = command is not None and "resume" in command.model_fields_set and command.resume is not None
    if has_resume and stateless:
        raise BadRequest("You must provide a thread_id when resuming.")
    if payload.input is not None and command is not None and (has_resume or command.update is not None):
        raise Unprocessable("Cannot specify both input and command")
    config = check_config(payload.config)
    if config.get("configurable") and payload.context:
        raise BadRequest(CONFIGURABLE_AND_CONTEXT)
    try:
        parsed = parse_messages(payload, has_resume)
        parse_error = None
    except (BadRequest, Unprocessable) as exc:
        if not catalog.user_graphs:
            raise
        # A user graph takes any input; whether this run is one is known once its assistant is read.
        parsed, parse_error = ParsedInput(), exc
    modes = payload.stream_mode if isinstance(payload.stream_mode, list) else [payload.stream_mode or "values"]
    return Prepared(
        run_id=uuid7(),
        thread_id=thread_id or str(uuid.uuid4()),
        assistant_id=assistant_id,
        payload=payload,
        modes=modes or ["values"],
        strategy=payload.multitask_strategy or "enqueue",
        if_not_exists="create" if stateless else (payload.if_not_exists or "reject"),
        temporary=stateless and (payload.on_completion or "delete") == "delete",
        parsed=parsed,
        resume=command.resume if has_resume else (parsed.tool_outputs or None),
        has_resume=has_resume or bool(parsed.tool_outputs),
        parse_error=parse_error,
    )


def parse_messages(payload: RunCreate, has_resume: bool) -> ParsedInput:
    """The built-in graph's input: messages, or tool outputs answering its interrupt."""
    command = payload.command
    parsed = parse_input(payload.input)
    if command is not None and command.update is not None:
        update_value = command.update
        if isinstance(update_value, dict):
            extra = parse_input(update_value, "command.update")
            parsed.messages.extend(extra.messages)
            parsed.system.extend(extra.system)
            parsed.tool_outputs.update(extra.tool_outputs)
    if parsed.tool_outputs and (parsed.messages or has_resume):
        raise Unprocessable("Tool messages answer an interrupt and must be sent alone")
    return parsed


def run_kwargs(p: Prepared, config: dict, payload: RunCreate, graph_id: str) -> dict:
    configurable = {
        **(config.get("configurable") or {}),
        "run_id": p.run_id, "thread_id": p.thread_id, "graph_id": graph_id, "assistant_id": p.assistant_id,
    }
    return {
        "input": payload.input,
        "command": payload.command.model_dump(exclude_none=True) if payload.command else None,
        "config": {**config, "configurable": configurable, "metadata": payload.metadata or {}},
        "context": payload.context or {},
        "stream_mode": p.modes,
        "interrupt_before": payload.interrupt_before,
        "interrupt_after": payload.interrupt_after,
        "webhook": payload.webhook,
        "feedback_keys": payload.feedback_keys,
        "temporary": p.temporary,
        "subgraphs": bool(payload.stream_subgraphs),
        "resumable": bool(payload.stream_resumable),
        "checkpoint_during": payload.checkpoint_during if payload.checkpoint_during is not None else True,
        "durability": payload.durability or "async",
    }
