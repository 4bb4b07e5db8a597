"""Translates the engine's run events (OpenAI event names and objects, read from the
event bus) into LangGraph stream-mode events, as LangGraph's server sends them (api/langgraph/streaming.py frames them).

One LangGraph run reads a segment of its engine run's event log: from `event_start` to
the next stop (the run completing, failing, or waiting for tool outputs). Every engine
event yields a fixed list of possible outputs, whatever modes the client asked for, so an
output's id (`<engine seq + 1>-<slot>`) is the same in every stream of the run: a client
can resume with Last-Event-ID, with the same or other stream modes. Outputs of the run's
start (metadata, first values) take ids `<event_start>-0` and `<event_start>-1`.
"""

from __future__ import annotations

import orjson

from threadloom.services.langgraph import graph, messages as lc
from threadloom.services.langgraph.ids import derived_id
from threadloom.services.langgraph.state import interrupt_of

HEARTBEAT_SECONDS = 5.0
# What a run's stream yields, in batches (an empty batch: nothing for HEARTBEAT_SECONDS):
# the event's name, its data (an object, or JSON already encoded), its id.
StreamEvent = tuple[str, object, str]
SUPPORTED_MODES = frozenset({"values", "updates", "messages", "messages-tuple"})
_ERRORS = {
    "thread.run.cancelled": ("UserInterrupt", "The run was cancelled."),
    "thread.run.expired": ("TimeoutError", "The run expired before it finished."),
}




def parse_event_id(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    head, _, tail = value.partition("-")
    try:
        return int(head), int(tail or 0)
    except ValueError:
        return None


def error_payload(run: dict) -> dict:
    last = run.get("last_error") or {}
    return {"error": last.get("code") or "Error", "message": last.get("message") or "The run failed."}


class StreamTranslator:
    """Feed it a segment's engine events in order; it returns (slot, event name, payload)
    for the requested modes. Its state (the current model turn, the values) follows every
    event, requested or not, so a replay from the segment's start rebuilds it."""

    def __init__(
        self,
        *,
        run_id: str,
        thread_id: str,
        assistant_id: str,
        graph_id: str,
        model: str,
        temperature: float | None,
        metadata: dict,
        modes: set[str],
        base_messages: list[dict] | None,
        first_step: int = 0,
    ):
        self.run_id = run_id
        self.thread_id = thread_id
        self.modes = modes
        self.want = {
            "values": "values" in modes,
            "updates": "updates" in modes,
            "messages": "messages" in modes,
            "messages-tuple": "messages-tuple" in modes,
            "interrupt": True,
            "error": True,
            "metadata": True,
        }
        self.values = list(base_messages or [])
        self._config_metadata = {
            **(metadata or {}),
            "graph_id": graph_id,
            "assistant_id": assistant_id,
            "run_attempt": 1,
            "run_id": run_id,
            "thread_id": thread_id,
            "user_id": "",
        }
        self.model = model
        self._model_metadata = {"ls_provider": "openai", "ls_model_name": model, "ls_model_type": "chat"}
        if temperature is not None:
            self._model_metadata["ls_temperature"] = temperature
        self.step = first_step  # the graph step before this segment's first node
        self.ended = False
        self._new_turn()
        self._seen: set[str] = set()
        self._tool_step_id: str | None = None

    def _new_turn(self) -> None:
        self.msg_id: str | None = None
        self.text: list[str] = []
        self.final_text: str | None = None
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        self.usage: dict | None = None  # of the turn's completed steps
        self._meta: dict | None = None
        self._meta_bytes: bytes | None = None
        self._chunk_suffix: bytes | None = None

    # -- metadata of the node that produced a message --------------------------------

    def _node_metadata(self, node: str) -> dict:
        ns = f"{node}:{derived_id('checkpoint-ns', self.run_id, str(self.step))}"
        meta = {
            **self._config_metadata,
            "langgraph_step": self.step,
            "langgraph_node": node,
            "langgraph_triggers": [f"branch:to:{node}"],
            "langgraph_path": ["__pregel_pull", node],
            "langgraph_checkpoint_ns": ns,
            "checkpoint_ns": ns,
        }
        if node == graph.AGENT_NODE:
            meta.update(self._model_metadata)
        return meta

    def _agent_meta(self) -> dict:
        if self._meta is None:
            self._meta = self._node_metadata(graph.AGENT_NODE)
            self._meta_bytes = orjson.dumps(self._meta)
        return self._meta

    def _message_id(self) -> str:
        if self.msg_id is None:
            self.msg_id = derived_id("ai-message", self.run_id, str(self.step))
        return self.msg_id

    # -- payloads ------------------------------------------------------------------------

    def _text_chunk(self, text: str) -> bytes:
        if self._chunk_suffix is None:
            self._agent_meta()
            self._chunk_suffix = (
                b',"additional_kwargs":{},"response_metadata":{},"type":"AIMessageChunk","name":null,"id":'
                + orjson.dumps(self._message_id())
                + b',"tool_calls":[],"invalid_tool_calls":[],"usage_metadata":null,"tool_call_chunks":[]},'
                + self._meta_bytes + b"]"
            )
        return b'[{"content":' + orjson.dumps(text) + self._chunk_suffix

    def _tool_chunk(self, index: int, entry: dict) -> list:
        call = self.calls[index]
        function = entry.get("function") or {}
        fragment = function.get("arguments") or ""
        first = "id" in entry
        chunk = {
            "name": call[1] if first or function.get("name") else None, "args": fragment,
            "id": call[0] if first else None, "index": index, "type": "tool_call_chunk",
        }
        parsed = lc.parse_arguments(fragment)
        if parsed is not None:
            tool_calls, invalid = [{"name": chunk["name"] or "", "args": parsed, "id": chunk["id"], "type": "tool_call"}], []
        else:
            tool_calls, invalid = [], [{"name": chunk["name"], "args": fragment, "id": chunk["id"], "error": None,
                                        "type": "invalid_tool_call"}]
        message = {
            "content": "", "additional_kwargs": {}, "response_metadata": {}, "type": "AIMessageChunk", "name": None,
            "id": self._message_id(), "tool_calls": tool_calls, "invalid_tool_calls": invalid,
            "usage_metadata": None, "tool_call_chunks": [chunk],
        }
        return [message, orjson.Fragment(self._meta_bytes)]

    def _accumulated(self, calls_from_required=None) -> dict:
        text = self.final_text if self.final_text is not None else "".join(self.text)
        if calls_from_required is not None:
            triples = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls_from_required]
        else:
            triples = [tuple(c) for _, c in sorted(self.calls.items())]
        return lc.ai(self._message_id(), text, triples)

    # -- the segment -----------------------------------------------------------------------

    def start(self) -> list[tuple[int, str, object]]:
        """Outputs before the first engine event: metadata, then the state the run starts from."""
        out = [(0, "metadata", {"run_id": self.run_id, "attempt": 1})]
        if self.want["values"]:
            out.append((1, "values", {"messages": list(self.values)} if self.values else {}))
        return out

    def feed(self, name: str, data) -> list[tuple[int, str, object]]:
        out: list[tuple[int, str, object]] = []
        slot = 0

        def emit(kind: str, event_name: str, make, when: bool = True) -> None:
            nonlocal slot
            if when and self.want[kind]:
                out.append((slot, event_name, make()))
            slot += 1

        if name == "thread.message.delta":
            self._agent_meta()
            for part in data["delta"].get("content") or ():
                if part.get("type") != "text":
                    continue
                text = part["text"]["value"]
                self.text.append(text)
                emit("messages-tuple", "messages", lambda: self._text_chunk(text))
                self._emit_partial(emit)
        elif name == "thread.run.step.delta":
            details = data["delta"].get("step_details") or {}
            self._agent_meta()
            for entry in details.get("tool_calls") or ():
                index = entry.get("index", 0)
                call = self.calls.get(index)
                function = entry.get("function") or {}
                if call is None:
                    call = self.calls[index] = [entry.get("id") or "", function.get("name") or "", ""]
                elif function.get("name") and not call[1]:
                    call[1] = function["name"]  # some servers name a call after its first chunk
                call[2] += function.get("arguments") or ""
                emit("messages-tuple", "messages", lambda: self._tool_chunk(index, entry))
                self._emit_partial(emit)
        elif name == "thread.run.in_progress":
            self.step += 1
            self._new_turn()
        elif name == "thread.message.created":
            if data.get("role") == "assistant" and self.msg_id is None:
                self.msg_id = data["id"]
        elif name == "thread.message.completed":
            if data.get("role") == "assistant":
                self.final_text = "".join(p["text"]["value"] for p in data["content"] if p["type"] == "text")
        elif name == "thread.run.step.created":
            if data.get("type") == "tool_calls":
                self._tool_step_id = data["id"]
                if self.msg_id is None:
                    self.msg_id = data["id"]
        elif name == "thread.run.step.completed":
            if data.get("usage"):
                self.usage = lc.added_usage(self.usage, data["usage"])
            if data.get("type") == "tool_calls":
                calls = lc.step_calls(data)
                if calls and all(c["function"].get("output") is not None for c in calls):
                    self._tools_node(calls, emit)
        elif name in ("thread.run.completed", "thread.run.incomplete"):
            cut = (data.get("incomplete_details") or {}).get("reason") in ("max_completion_tokens", "max_prompt_tokens")
            self._agent_node(emit, None, "length" if cut else "stop")
            self.ended = True
        elif name == "thread.run.requires_action":
            required = data["required_action"]["submit_tool_outputs"]["tool_calls"]
            message = self._agent_node(emit, required, "tool_calls")
            step_id = self._tool_step_id or derived_id("tool-step", data["id"], str(self.step))
            interrupt = {"__interrupt__": [interrupt_of(step_id, message["tool_calls"])]}
            emit("interrupt", "updates" if self.want["updates"] else "values", lambda: interrupt)
            self.ended = True
        elif name == "thread.run.failed":
            emit("error", "error", lambda: error_payload(data))
            self.ended = True
        elif name in _ERRORS:
            error, message = _ERRORS[name]
            emit("error", "error", lambda: {"error": error, "message": message})
            self.ended = True
        return out

    def _emit_partial(self, emit) -> None:
        message_id = self._message_id()
        first = message_id not in self._seen
        self._seen.add(message_id)
        emit("messages", "messages/metadata", lambda: {message_id: {"metadata": self._agent_meta()}}, when=first)
        emit("messages", "messages/partial", lambda: [self._accumulated()])

    def _agent_node(self, emit, required, finish_reason: str) -> dict:
        message = dict(self._accumulated(required))
        lc.describe_ai(message, self.usage, self.model, finish_reason)
        self.values.append(message)
        emit("updates", "updates", lambda: {graph.AGENT_NODE: {"messages": [message]}})
        emit("values", "values", lambda: {"messages": list(self.values)})
        return message

    def _tools_node(self, calls: list[dict], emit) -> None:
        self.step += 1
        meta = self._node_metadata(graph.TOOLS_NODE)
        produced = [lc.tool(c["id"], c["function"]["name"], c["function"]["output"]) for c in calls]
        for message in produced:
            emit("messages-tuple", "messages", lambda m=message: [m, meta])
            first = message["id"] not in self._seen
            self._seen.add(message["id"])
            emit("messages", "messages/metadata", lambda m=message: {m["id"]: {"metadata": meta}}, when=first)
            emit("messages", "messages/complete", lambda m=message: [m])
        self.values.extend(produced)
        emit("updates", "updates", lambda: {graph.TOOLS_NODE: {"messages": produced}})
        emit("values", "values", lambda: {"messages": list(self.values)})
