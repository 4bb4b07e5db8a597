"""A graph that reports its progress as custom stream events (get_stream_writer), taking
`delay` seconds per step when asked to (for tests of runs that are still running)."""

import asyncio
from typing import TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    steps: int
    delay: float
    done: int


async def work(state: State):
    writer = get_stream_writer()
    for i in range(state["steps"]):
        await asyncio.sleep(state.get("delay") or 0)
        writer({"progress": i + 1, "of": state["steps"]})
    return {"done": state["steps"]}


builder = StateGraph(State)
builder.add_node("work", work)
builder.add_edge(START, "work")
builder.add_edge("work", END)
graph = builder.compile()
