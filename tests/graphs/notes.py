"""A graph made by a factory (called per run with its config) that keeps notes in the
server's store, under the user named in its context."""

import os
from dataclasses import dataclass
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime


@dataclass
class Context:
    user: str = "anonymous"


class State(TypedDict, total=False):
    note: str
    count: int
    env: str


async def remember(state: State, runtime: Runtime[Context]):
    namespace = ("notes", runtime.context.user)
    await runtime.store.aput(namespace, f"note-{len(await runtime.store.asearch(namespace)) + 1}", {"text": state["note"]})
    return {"count": len(await runtime.store.asearch(namespace)), "env": os.environ.get("THREADLOOM_TEST_GRAPHS", "")}


def make_graph(config):
    builder = StateGraph(State, context_schema=Context)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    return builder.compile()
