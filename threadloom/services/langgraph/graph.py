"""The built-in graph `agent`: the engine's model-and-tools loop seen as a LangGraph
graph. Node `agent` calls the model on the thread's messages; when the model calls
tools the run stops at an interrupt before node `tools` (the client runs the tools and
resumes with their outputs), and `tools` then adds one tool message per call.

An assistant configures it through `config.configurable` and/or `context`:
`model_name` or `model`, `system_prompt`, `tools` (OpenAI function tools, or
{name, description, parameters}), `temperature`, `top_p`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from threadloom.domain.tools import FunctionTool
from threadloom.services.langgraph.errors import Unprocessable

GRAPH_ID = "agent"
GRAPHS = (GRAPH_ID,)
AGENT_NODE = "agent"
TOOLS_NODE = "tools"
# The model a graph assistant runs when neither it nor the run names one.
DEFAULT_MODEL = "gpt-4o-mini"

_TOOLS = TypeAdapter(list[FunctionTool])


@dataclass
class AgentSettings:
    """What one run of the graph sends the engine."""

    model: str
    instructions: str | None
    tools: list[dict] | None  # None: the assistant's own
    temperature: float | None = None
    top_p: float | None = None

    def run_request(self, assistant_id: str, system: list[str] | None = None) -> dict:
        """Fields of the engine's CreateRunRequest."""
        instructions = self.instructions
        if system:
            extra = "\n\n".join(s for s in system if s)
            instructions = f"{instructions}\n\n{extra}" if instructions else extra
        req: dict = {"assistant_id": assistant_id, "model": self.model}
        if instructions is not None:
            req["instructions"] = instructions
        if self.tools is not None:
            req["tools"] = self.tools
        if self.temperature is not None:
            req["temperature"] = self.temperature
        if self.top_p is not None:
            req["top_p"] = self.top_p
        return req


def _tool(entry) -> dict:
    if isinstance(entry, dict) and "function" not in entry and "name" in entry:
        entry = {"type": "function", "function": {k: v for k, v in entry.items() if k in ("name", "description", "parameters", "strict")}}
    return entry


def normalize_tools(value) -> list[dict]:
    if not isinstance(value, list):
        raise Unprocessable("configurable 'tools' must be a list of function tools")
    try:
        tools = _TOOLS.validate_python([_tool(t) for t in value])
    except ValidationError as exc:
        raise Unprocessable(f"Invalid tools: {exc.errors(include_url=False)[0]['msg']}") from None
    return [t.model_dump(exclude_none=True) for t in tools]


def effective_configurable(*layers: dict | None) -> dict:
    """Later layers win: assistant config, assistant context, run config, run context."""
    merged: dict = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged


def agent_settings(configurable: dict, engine_assistant: dict) -> AgentSettings:
    """The run's settings: the configurable's, else the engine assistant's (a /v1 assistant
    brings its model, instructions and tools)."""
    model = configurable.get("model") or configurable.get("model_name") or engine_assistant.get("model") or DEFAULT_MODEL
    if not isinstance(model, str):
        raise Unprocessable("configurable 'model' must be a string")
    if "system_prompt" in configurable:
        instructions = configurable["system_prompt"]
        if instructions is not None and not isinstance(instructions, str):
            raise Unprocessable("configurable 'system_prompt' must be a string")
    else:
        instructions = None  # the engine assistant's instructions apply
    tools = normalize_tools(configurable["tools"]) if configurable.get("tools") is not None else None
    temperature = configurable.get("temperature")
    top_p = configurable.get("top_p")
    for name, value, high in (("temperature", temperature, 2), ("top_p", top_p, 1)):
        if value is not None and (not isinstance(value, (int, float)) or not 0 <= value <= high):
            raise Unprocessable(f"configurable '{name}' must be a number between 0 and {high}")
    return AgentSettings(model=model, instructions=instructions, tools=tools, temperature=temperature, top_p=top_p)


_MESSAGES_SCHEMA = {
    "type": "object",
    "properties": {"messages": {"type": "array", "items": {"type": "object"}, "title": "Messages"}},
    "title": "MessagesState",
}
_CONFIG_SCHEMA = {
    "type": "object",
    "title": "Configuration",
    "properties": {
        "model": {"type": "string", "title": "Model", "description": "Model name the run uses (alias: model_name)."},
        "model_name": {"type": "string", "title": "Model Name"},
        "system_prompt": {"type": "string", "title": "System Prompt"},
        "tools": {"type": "array", "items": {"type": "object"}, "title": "Tools",
                  "description": "Function tools; their calls interrupt the run until resumed with outputs."},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


def schemas(graph_id: str) -> dict:
    return {
        "graph_id": graph_id,
        "input_schema": _MESSAGES_SCHEMA,
        "output_schema": _MESSAGES_SCHEMA,
        "state_schema": _MESSAGES_SCHEMA,
        "config_schema": _CONFIG_SCHEMA,
        "context_schema": _CONFIG_SCHEMA,
    }


def drawable(graph_id: str) -> dict:
    """The graph as LangGraph's /assistants/{id}/graph draws it."""
    return {
        "nodes": [
            {"id": "__start__", "type": "schema", "data": "__start__"},
            {"id": AGENT_NODE, "type": "runnable", "data": {"id": ["threadloom", "engine", "model_turn"], "name": AGENT_NODE}},
            {"id": TOOLS_NODE, "type": "runnable", "data": {"id": ["threadloom", "client", "tool_outputs"], "name": TOOLS_NODE}},
            {"id": "__end__", "type": "schema", "data": "__end__"},
        ],
        "edges": [
            {"source": "__start__", "target": AGENT_NODE},
            {"source": AGENT_NODE, "target": TOOLS_NODE, "conditional": True},
            {"source": AGENT_NODE, "target": "__end__", "conditional": True},
            {"source": TOOLS_NODE, "target": AGENT_NODE},
        ],
    }
