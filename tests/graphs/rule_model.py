"""A chat model standing in for the LLM in the example graphs: a LangChain chat model
(so LangGraph streams its tokens in `messages` mode) whose answers follow fixed rules:
asked about the weather in a city, it calls `get_weather`; given a tool result, it says
it; otherwise it echoes the question."""

from __future__ import annotations

import re
import uuid

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


def _answer(messages) -> AIMessage:
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(content=f"The weather: {last.content}")
    text = last.content if isinstance(last.content, str) else str(last.content)
    match = re.search(r"weather in (\w+)", text)
    if match:
        call = {"name": "get_weather", "args": {"city": match.group(1)}, "id": "call_" + uuid.uuid4().hex[:8]}
        return AIMessage(content="", tool_calls=[call])
    return AIMessage(content=f"You said: {text}")


class RuleModel(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "rule-model"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=_answer(messages))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        answer = _answer(messages)
        if answer.tool_calls:
            chunk = AIMessageChunk(content="", tool_call_chunks=[
                {"name": c["name"], "args": __import__("json").dumps(c["args"]), "id": c["id"], "index": 0}
                for c in answer.tool_calls])
            yield ChatGenerationChunk(message=chunk)
            return
        for i, word in enumerate(answer.content.split(" ")):
            token = word if i == 0 else " " + word
            if run_manager:
                run_manager.on_llm_new_token(token)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
