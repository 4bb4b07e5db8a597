"""Turning chat-completions messages into one prompt string with the GGUF's own template.

Most chat templates shipped in GGUF files (SmolLM2's included) know only system, user
and assistant turns whose content is a string: an assistant turn with `tool_calls`
(content None) or a `tool` turn makes them fail or render nonsense. So messages are first
normalized to plain text turns: tool calls are written as the same JSON list the model
is asked to produce, tool results become user turns naming the function, and
consecutive turns of one role are merged (templates such as Mistral's demand strict
alternation). A GGUF without a template gets ChatML.
"""

from __future__ import annotations

import json

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def content_text(content) -> str:
    """The text of a message's content: a string, or a list of parts (text parts kept,
    other parts such as images named, since a text-only model cannot see them)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(part.get("text", ""))
        elif isinstance(part, dict):
            parts.append(f"[{part.get('type', 'attachment')}]")
    return "\n".join(parts)


def tool_calls_text(tool_calls: list[dict]) -> str:
    """Past tool calls in the JSON-list form the model is taught to call with."""
    calls = []
    for call in tool_calls:
        fn = call.get("function", {})
        try:
            arguments = json.loads(fn.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = fn.get("arguments")
        calls.append({"name": fn.get("name"), "arguments": arguments})
    return json.dumps(calls, ensure_ascii=False)


def normalize_messages(messages: list[dict]) -> list[dict]:
    """Plain {role, content} turns with roles system/user/assistant, merged by role."""
    names_by_call_id: dict[str, str] = {}
    turns: list[dict] = []
    for message in messages:
        role = message.get("role")
        text = content_text(message.get("content"))
        if role == "developer":
            role = "system"
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                names_by_call_id[call.get("id", "")] = call.get("function", {}).get("name", "")
            calls = tool_calls_text(message["tool_calls"])
            text = f"{text}\n{calls}" if text else calls
        elif role == "tool":
            name = names_by_call_id.get(message.get("tool_call_id", ""), "the function")
            role, text = "user", f"Result of {name}: {text}"
        elif role not in ("system", "user", "assistant"):
            role = "user"
        turns.append({"role": role, "content": text})
    # A system turn after the first position breaks many templates: fold it into a user turn.
    for i, turn in enumerate(turns):
        if i > 0 and turn["role"] == "system":
            turn["role"] = "user"
    return _merge_same_role(turns)


def _merge_same_role(turns: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"] += "\n\n" + turn["content"]
        else:
            merged.append(dict(turn))
    return merged


class ChatTemplate:
    """The model's chat template (from the GGUF metadata), compiled once."""

    def __init__(self, template: str | None, bos_token: str, eos_token: str):
        # llama-cpp-python's renderer: a sandboxed Jinja environment with the filters and
        # globals (raise_exception, tojson, strftime_now) that GGUF templates expect.
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter(template or CHATML_TEMPLATE, eos_token, bos_token)
        self._chatml = Jinja2ChatFormatter(CHATML_TEMPLATE, eos_token, bos_token)

    def render(self, messages: list[dict]) -> str:
        """The prompt for the next assistant turn (ends where the assistant begins)."""
        turns = normalize_messages(messages)
        try:
            return self._formatter(messages=turns).prompt
        except Exception:
            # A template that rejects these turns (some insist on a user turn first, or
            # raise on roles) should not fail the run: ChatML is understood by most models.
            return self._chatml(messages=turns).prompt
