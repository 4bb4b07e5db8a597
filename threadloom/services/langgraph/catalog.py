"""The graphs the LangGraph door serves: the user's (langgraph.json) and the built-in
`agent`, unless a user graph takes that name (the user's wins)."""

from __future__ import annotations

from langgraph.graph import StateGraph
from pydantic import TypeAdapter

from threadloom.services.langgraph import graph as builtin
from threadloom.services.langgraph.user_graphs import UserGraph


class GraphCatalog:
    def __init__(self, user_graphs: dict[str, UserGraph] | None = None):
        self.user_graphs = dict(user_graphs or {})
        builtin_ids = () if builtin.GRAPH_ID in self.user_graphs else (builtin.GRAPH_ID,)
        self.ids: tuple[str, ...] = (*builtin_ids, *self.user_graphs)

    def user_graph(self, graph_id: str | None) -> UserGraph | None:
        return self.user_graphs.get(graph_id) if graph_id else None

    def is_builtin(self, graph_id: str | None) -> bool:
        return (graph_id or builtin.GRAPH_ID) == builtin.GRAPH_ID and builtin.GRAPH_ID not in self.user_graphs

    def schemas(self, graph_id: str) -> dict:
        user = self.user_graph(graph_id)
        if user is None:
            return builtin.schemas(graph_id)
        if user.is_factory:  # its shape is known only per run
            return {"graph_id": graph_id, "input_schema": None, "output_schema": None, "state_schema": None,
                    "config_schema": None, "context_schema": None}
        return {"graph_id": graph_id, **_schemas(user.schema_graph())}

    def drawable(self, graph_id: str, xray: int | bool = False) -> dict:
        user = self.user_graph(graph_id)
        if user is None:
            return builtin.drawable(graph_id)
        if user.is_factory:
            return {"nodes": [], "edges": []}
        return user.schema_graph().get_graph(xray=xray).to_json()

    def subgraphs(self, graph_id: str, namespace: str | None = None, recurse: bool = False) -> dict:
        user = self.user_graph(graph_id)
        if user is None or user.is_factory:
            return {}
        out = {}
        for ns, sub in user.schema_graph().get_subgraphs(namespace=namespace, recurse=recurse):
            out[ns] = {"graph_id": graph_id, **_schemas(sub)}
        return out


def _schemas(compiled) -> dict:
    builder = getattr(compiled, "builder", None)
    state = builder.state_schema if isinstance(builder, StateGraph) else None
    return {
        "input_schema": _json_schema(compiled.get_input_jsonschema, builder, builder.input_schema if state else None),
        "output_schema": _json_schema(compiled.get_output_jsonschema, builder, builder.output_schema if state else None),
        "state_schema": _json_schema(lambda: TypeAdapter(state).json_schema(), builder, state) if state else None,
        "config_schema": _json_schema(compiled.get_config_jsonschema),
        "context_schema": _json_schema(compiled.get_context_jsonschema),
    }


def _json_schema(read, builder=None, schema_type=None) -> dict | None:
    """langgraph's JSON Schema of a graph's input, output or state; pydantic refuses some
    (a typing.TypedDict before Python 3.12): then one property per channel of the schema."""
    try:
        return read()
    except Exception:
        if schema_type is None or schema_type not in builder.schemas:
            return None
        return {"type": "object", "title": getattr(schema_type, "__name__", "State"),
                "properties": {key: {"title": key.replace("_", " ").title()} for key in builder.schemas[schema_type]}}
