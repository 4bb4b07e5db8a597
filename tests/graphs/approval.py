"""A graph that drafts, then stops for a person's approval (interrupt) before publishing."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class State(TypedDict, total=False):
    topic: str
    draft: str
    approved: bool
    published: str


def write(state: State):
    return {"draft": f"A post about {state['topic']}"}


def review(state: State):
    answer = interrupt({"question": "Publish this draft?", "draft": state["draft"]})
    return {"approved": bool(answer.get("approved"))}


def publish(state: State):
    return {"published": state["draft"] if state["approved"] else ""}


builder = StateGraph(State)
builder.add_node("write", write)
builder.add_node("review", review)
builder.add_node("publish", publish)
builder.add_edge(START, "write")
builder.add_edge("write", "review")
builder.add_edge("review", "publish")
builder.add_edge("publish", END)
graph = builder.compile()
