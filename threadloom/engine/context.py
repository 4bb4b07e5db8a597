"""Builds the model input of a run from its thread: instructions, the history of
messages and tool calls, truncation and the prompt-token budget.

History is cut into units that are kept or dropped whole: a message, or a tool-calls
step together with its outputs (a model must never see a call without its output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import orjson

from threadloom.engine import code_interpreter, file_search

MESSAGE_OVERHEAD = 4  # role and separators per chat message, as OpenAI counts them
PRIMING = 3


class PromptBudgetExceeded(Exception):
    """Even the smallest context (instructions and the newest unit) exceeds max_prompt_tokens."""


@dataclass
class Unit:
    ordinal: int
    is_message: bool
    messages: list[dict]  # chat-completions messages
    tokens: int = 0


def _user_content(body: dict) -> str | list[dict]:
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
            # Files are not served to models yet: name the file so the model knows one was sent.
            out.append({"type": "text", "text": f"[image file {part['image_file']['file_id']}]"})
    return out


def message_unit(ordinal: int, body: dict) -> Unit:
    if body["role"] == "assistant":
        text = "".join(p["text"]["value"] for p in body["content"] if p["type"] == "text")
        chat = {"role": "assistant", "content": text}
    else:
        chat = {"role": "user", "content": _user_content(body)}
    return Unit(ordinal, True, [chat])


def tool_step_unit(ordinal: int, body: dict, search_numbers: dict | None = None) -> Unit | None:
    """A tool-calls step as an assistant message with tool_calls and one tool message per
    output; None while any output is missing. A file_search call is shown as the call of
    the search function with its results as output (with the citation markers of the
    run's own searches, `search_numbers`: call id -> its number in the run)."""
    calls, outputs = [], []
    for call in body["step_details"]["tool_calls"]:
        if call["type"] == "function":
            if call["function"].get("output") is None:
                return None
            calls.append({"id": call["id"], "type": "function",
                          "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}})
            outputs.append({"role": "tool", "tool_call_id": call["id"], "content": call["function"]["output"]})
        elif call["type"] == "code_interpreter":
            arguments = orjson.dumps({"code": call["code_interpreter"]["input"]}).decode()
            calls.append({"id": call["id"], "type": "function", "function": {"name": code_interpreter.NAME, "arguments": arguments}})
            outputs.append({"role": "tool", "tool_call_id": call["id"], "content": code_interpreter.model_output(call)})
        elif call["type"] == "file_search":
            number = (search_numbers or {}).get(call["id"])
            calls.append({"id": call["id"], "type": "function", "function": {"name": file_search.NAME, "arguments": "{}"}})
            results = call["file_search"].get("results") or []
            outputs.append({"role": "tool", "tool_call_id": call["id"], "content": file_search.model_output(number, results, None)})
    if not calls:
        return None
    assistant = {"role": "assistant", "content": None, "tool_calls": calls}
    return Unit(ordinal, False, [assistant, *outputs])


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def count_chat_message(message: dict, count: Callable[[str], int]) -> int:
    tokens = MESSAGE_OVERHEAD + count(_content_text(message.get("content")))
    for call in message.get("tool_calls") or ():
        tokens += count(call["function"]["name"]) + count(call["function"]["arguments"]) + 3
    return tokens


@dataclass
class BuiltContext:
    messages: list[dict]
    prompt_tokens: int  # our count of what is sent
    truncated: bool


def _trim_text_to(message: dict, tokens_over: int, count: Callable[[str], int]) -> dict:
    """Cut the start of a message's text so it is `tokens_over` tokens shorter; keeps the end,
    which is what the user asked last."""
    text = _content_text(message.get("content"))
    if not text:
        return message
    total = max(count(text), 1)
    keep_chars = max(0, int(len(text) * (total - tokens_over - 8) / total))
    trimmed = dict(message)
    trimmed["content"] = text[len(text) - keep_chars:] if keep_chars else ""
    return trimmed


def build_context(
    *,
    instructions: str | None,
    units: list[Unit],
    tools: list[dict] | None,
    truncation: dict,
    count: Callable[[str], int],
    window_budget: int | None,
    prompt_budget: int | None,
) -> BuiltContext:
    """`window_budget`: what the model's context can take for the prompt; `prompt_budget`:
    what is left of the run's max_prompt_tokens. Either may be None (no limit)."""
    units = sorted(units, key=lambda u: u.ordinal)
    truncated = False
    if truncation.get("type") == "last_messages" and truncation.get("last_messages"):
        keep = truncation["last_messages"]
        message_positions = [i for i, u in enumerate(units) if u.is_message]
        if len(message_positions) > keep:
            units = units[message_positions[-keep]:]
            truncated = True
    for unit in units:
        unit.tokens = sum(count_chat_message(m, count) for m in unit.messages)
    system = [{"role": "system", "content": instructions}] if instructions else []
    fixed = PRIMING + sum(count_chat_message(m, count) for m in system)
    if tools:
        fixed += count(orjson.dumps(tools).decode())
    total = fixed + sum(u.tokens for u in units)

    limits = [b for b in (window_budget, prompt_budget) if b is not None]
    budget = min(limits) if limits else None
    if budget is not None and total > budget:
        # Drop the oldest units (the middle of the conversation, after the instructions)
        # until it fits, always keeping the newest one.
        while len(units) > 1 and total > budget:
            total -= units.pop(0).tokens
            truncated = True
        if total > budget:
            if prompt_budget is not None and total > prompt_budget and (window_budget is None or prompt_budget <= window_budget):
                raise PromptBudgetExceeded(f"the prompt needs {total} tokens; {prompt_budget} are left")
            # Over the model's window with one unit left: cut its text rather than overflow.
            last = units[-1]
            over = total - budget
            last.messages = [_trim_text_to(m, over, count) if m.get("role") in ("user", "assistant") and m.get("content") else m for m in last.messages]
            new_tokens = sum(count_chat_message(m, count) for m in last.messages)
            total = total - last.tokens + new_tokens
            last.tokens = new_tokens
            truncated = True
            if prompt_budget is not None and total > prompt_budget:
                raise PromptBudgetExceeded(f"the prompt needs {total} tokens; {prompt_budget} are left")
    messages = list(system)
    for unit in units:
        messages.extend(unit.messages)
    return BuiltContext(messages, total, truncated)
