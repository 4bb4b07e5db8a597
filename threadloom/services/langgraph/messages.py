"""LangChain message dicts <-> the engine's stored messages and tool-call steps.

A thread's LangGraph `messages` are rendered from what the OpenAI door stores: user
messages are `human`, assistant messages `ai`; a tool-calls step is an `ai` message with
`tool_calls` (merged into the text message the same model turn wrote before it) and, once
its outputs are in, one `tool` message per call. Input messages go the other way: LangChain
accepts several spellings (role or type, tuples, bare strings, content parts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from threadloom.services.langgraph.errors import Unprocessable
from threadloom.services.langgraph.ids import derived_id

HUMAN_ROLES = {"human", "user"}
AI_ROLES = {"ai", "assistant"}
SYSTEM_ROLES = {"system", "developer"}
TOOL_ROLES = {"tool", "function"}
# OpenAI's limit on a message's text, held on this door too: both doors store the same
# messages, and the model sees them alike.
MAX_MESSAGE_TEXT = 256_000


# -- stored -> LangChain --------------------------------------------------------


def human(message_id: str, content, name: str | None = None) -> dict:
    return {
        "content": content,
        "additional_kwargs": {},
        "response_metadata": {},
        "type": "human",
        "name": name,
        "id": message_id,
    }


def parse_arguments(arguments: str) -> dict | None:
    """Tool-call arguments as an object; None when they are not a JSON object."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def tool_call(call_id: str, name: str, arguments: str) -> dict:
    return {"name": name, "args": parse_arguments(arguments) or {}, "id": call_id, "type": "tool_call"}


def ai(message_id: str, text: str, calls: list[tuple[str, str, str]] = ()) -> dict:
    """calls: (id, name, arguments json)."""
    valid, invalid = [], []
    for call_id, name, arguments in calls:
        args = parse_arguments(arguments)
        if args is None:
            invalid.append({"name": name, "args": arguments, "id": call_id, "error": None, "type": "invalid_tool_call"})
        else:
            valid.append({"name": name, "args": args, "id": call_id, "type": "tool_call"})
    return {
        "content": text,
        "additional_kwargs": {},
        "response_metadata": {},
        "type": "ai",
        "name": None,
        "id": message_id,
        "tool_calls": valid,
        "invalid_tool_calls": invalid,
        "usage_metadata": None,
    }


def describe_ai(message: dict, usage: dict | None, model: str | None, finish_reason: str) -> None:
    """usage_metadata and response_metadata of an ai message, from what the model reported."""
    if usage:
        message["usage_metadata"] = _langchain_usage(usage)
    if model:
        message["response_metadata"] = {"model_name": model, "finish_reason": finish_reason}


def _langchain_usage(usage: dict) -> dict:
    if "input_tokens" in usage:
        return usage
    return {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"]}


def added_usage(first: dict | None, second: dict | None) -> dict | None:
    """Usage of a message whose text and tool calls came from two steps (LangChain's keys)."""
    if not first or not second:
        return _langchain_usage(first or second) if (first or second) else None
    first, second = _langchain_usage(first), _langchain_usage(second)
    return {k: first[k] + second[k] for k in ("input_tokens", "output_tokens", "total_tokens")}


def tool(call_id: str, name: str, output: str) -> dict:
    return {
        "content": output,
        "additional_kwargs": {},
        "response_metadata": {},
        "type": "tool",
        "name": name,
        "id": derived_id("tool-message", call_id),
        "tool_call_id": call_id,
        "artifact": None,
        "status": "success",
    }


def stored_content(body: dict):
    """A stored message's content as LangChain content: a string when it is only text."""
    parts = body["content"]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"]["value"] for p in parts)
    out = []
    for part in parts:
        if part["type"] == "text":
            out.append({"type": "text", "text": part["text"]["value"]})
        elif part["type"] == "image_url":
            out.append({"type": "image_url", "image_url": dict(part["image_url"])})
        elif part["type"] == "image_file":
            out.append({"type": "image_file", "file_id": part["image_file"]["file_id"]})
    return out


def step_calls(step: dict) -> list[dict]:
    return [c for c in step["step_details"]["tool_calls"] if c["type"] == "function"]


@dataclass
class Rendered:
    """A thread's messages as LangGraph shows them, and the tool calls it waits on."""

    messages: list[dict] = field(default_factory=list)
    times: list[int] = field(default_factory=list)  # created_at of each message
    pending_calls: list[dict] = field(default_factory=list)  # LangChain tool calls awaiting outputs
    pending_step_id: str | None = None
    last_ordinal: int = 0


def render(
    messages: list[tuple[int, dict]],
    steps: list[tuple[int, dict]],
    *,
    waiting_run_id: str | None = None,
    until_ordinal: int | None = None,
    without_outputs: str | None = None,
    usage: dict[str, dict] | None = None,
    models: dict[str, str] | None = None,
) -> Rendered:
    """messages / steps: (ordinal, body) of one thread. `waiting_run_id`: the run waiting
    for tool outputs, whose open tool step is shown as an ai message with tool calls.
    `until_ordinal` and `without_outputs` (a step id) give the state a run started from.
    `usage` (by message or tool step id) and `models` (by run id) fill the ai messages'
    usage_metadata and response_metadata, as LangChain's chat models do."""
    usage, models = usage or {}, models or {}
    units: list[tuple[int, int, dict]] = [(o, 0, b) for o, b in messages if b["status"] != "in_progress"]
    for ordinal, body in steps:
        if body["type"] == "tool_calls":
            units.append((ordinal, 1, body))
    units.sort(key=lambda u: u[0])
    out = Rendered()
    previous_text: tuple[dict, str | None] | None = None  # (ai dict, run_id) a step may join
    for ordinal, kind, body in units:
        if until_ordinal is not None and ordinal > until_ordinal:
            break
        out.last_ordinal = ordinal
        if kind == 0:
            if body["role"] == "assistant":
                message = ai(body["id"], stored_content(body) if all(p["type"] == "text" for p in body["content"]) else "")
                cut = (body.get("incomplete_details") or {}).get("reason") == "max_tokens"
                describe_ai(message, usage.get(body["id"]), models.get(body.get("run_id")), "length" if cut else "stop")
                previous_text = (message, body.get("run_id"))
            else:
                message = human(body["id"], stored_content(body))
                previous_text = None
            out.messages.append(message)
            out.times.append(body["created_at"])
            continue
        calls = step_calls(body)
        if not calls:
            previous_text = None
            continue
        complete = all(c["function"].get("output") is not None for c in calls)
        pending = body["status"] == "in_progress" and body["run_id"] == waiting_run_id
        show_outputs = complete and body["id"] != without_outputs
        if not complete and not pending and body["id"] != without_outputs:
            previous_text = None
            continue  # a call that was never answered (cancelled, expired) is not in the state
        triples = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls]
        if previous_text is not None and previous_text[1] == body["run_id"] and not previous_text[0]["tool_calls"]:
            merged = ai(previous_text[0]["id"], previous_text[0]["content"], triples)
            describe_ai(merged, added_usage(previous_text[0]["usage_metadata"], usage.get(body["id"])), models.get(body["run_id"]), "tool_calls")
            out.messages[-1] = merged
        else:
            message = ai(body["id"], "", triples)
            describe_ai(message, usage.get(body["id"]), models.get(body["run_id"]), "tool_calls")
            out.messages.append(message)
            out.times.append(body["created_at"])
        previous_text = None
        if show_outputs:
            for c in calls:
                out.messages.append(tool(c["id"], c["function"]["name"], c["function"]["output"]))
                out.times.append(body.get("completed_at") or body["created_at"])
        else:
            out.pending_calls = [tool_call(*t) for t in triples]
            out.pending_step_id = body["id"]
    return out


# -- LangChain input -> stored ---------------------------------------------------


@dataclass
class ParsedInput:
    messages: list[dict] = field(default_factory=list)  # CreateMessageRequest fields (role user|assistant)
    system: list[str] = field(default_factory=list)
    tool_outputs: dict[str, str] = field(default_factory=dict)  # tool_call_id -> output


def _content_parts(content) -> str | list[dict]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        raise Unprocessable("Message content must be a string or a list of content parts")
    parts: list[dict] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
            continue
        if not isinstance(part, dict):
            raise Unprocessable("Message content parts must be objects or strings")
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise Unprocessable("image_url content parts need a url")
            entry = {"url": url}
            if isinstance(image, dict) and image.get("detail") in ("auto", "low", "high"):
                entry["detail"] = image["detail"]
            parts.append({"type": "image_url", "image_url": entry})
        elif kind == "image" and isinstance(part.get("url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["url"]}})
        else:
            raise Unprocessable(f"Unsupported message content part type: {kind!r}")
    if not parts:
        return ""
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _text_of(content) -> str:
    parts = _content_parts(content)
    if isinstance(parts, str):
        return parts
    return "".join(p.get("text", "") for p in parts if p["type"] == "text")


def _one_message(item) -> tuple[str, object, dict]:
    if isinstance(item, str):
        return "human", item, {}
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1], {}
    if isinstance(item, dict):
        role = item.get("role") or item.get("type")
        if not isinstance(role, str):
            raise Unprocessable("Each message needs a 'role' or a 'type'")
        return role, item.get("content"), item
    raise Unprocessable("Messages must be objects, [role, content] pairs or strings")


def parse_input(value, param: str = "input") -> ParsedInput:
    """The `input` of a run of the `agent` graph: {"messages": [...]} (a single message or
    a string is taken as one message). Other state keys are ignored, as the graph has none.
    `param` names `value` in errors."""
    parsed = ParsedInput()
    if value is None:
        return parsed
    if not isinstance(value, dict):
        raise Unprocessable("Input of the agent graph must be an object like {\"messages\": [...]}")
    raw = value.get("messages")
    if raw is None:
        return parsed
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list):
        raise Unprocessable("'messages' must be a list")
    for i, item in enumerate(raw):
        role, content, extra = _one_message(item)
        length = len(_text_of(content))
        if length > MAX_MESSAGE_TEXT:
            raise Unprocessable(f"Invalid '{param}.messages[{i}]': the text of a message is at most "
                                f"{MAX_MESSAGE_TEXT} characters, this one has {length}.")
        role = role.lower()
        if role.endswith("messagechunk"):
            role = role[: -len("messagechunk")]
        elif role.endswith("message"):
            role = role[: -len("message")]
        if role in HUMAN_ROLES:
            parsed.messages.append({"role": "user", "content": _content_parts(content) or ""})
        elif role in AI_ROLES:
            if extra.get("tool_calls"):
                raise Unprocessable("ai messages with tool_calls cannot be sent as input; the model's tool calls come from runs")
            parsed.messages.append({"role": "assistant", "content": _text_of(content)})
        elif role in SYSTEM_ROLES:
            parsed.system.append(_text_of(content))
        elif role in TOOL_ROLES:
            call_id = extra.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise Unprocessable("tool messages need a 'tool_call_id'")
            parsed.tool_outputs[call_id] = _text_of(content)
        else:
            raise Unprocessable(f"Unsupported message type: {role!r}")
    return parsed


def output_text(value) -> str:
    """A tool output as the model will read it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("type") == "tool" and "content" in value:
        return _text_of(value["content"])
    return orjson.dumps(value).decode()
