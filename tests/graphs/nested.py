"""A graph with a subgraph as one of its nodes (its events stream under `|child:<id>`)."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    text: str
    log: list[str]


def shout(state: State):
    return {"text": state["text"].upper()}


def mark(state: State):
    return {"text": state["text"] + "!"}


child_builder = StateGraph(State)
child_builder.add_node("shout", shout)
child_builder.add_node("mark", mark)
child_builder.add_edge(START, "shout")
child_builder.add_edge("shout", "mark")
child_builder.add_edge("mark", END)
child = child_builder.compile()


def prepare(state: State):
    return {"text": state["text"].strip()}


builder = StateGraph(State)
builder.add_node("prepare", prepare)
builder.add_node("child", child)
builder.add_edge(START, "prepare")
builder.add_edge("prepare", "child")
builder.add_edge("child", END)
graph = builder.compile()
