"""The peer's graph: one node that calls the model (ChatOpenAI) on the messages state.

The model is `langchain-openai` pointed at the bench's scripted upstream
(PEER_UPSTREAM_URL, e.g. http://127.0.0.1:9100/v1), streaming, so LangGraph's server
relays the model's tokens like threadloom does.
"""

import os

from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph

model = ChatOpenAI(
    base_url=os.environ.get("PEER_UPSTREAM_URL", "http://127.0.0.1:9100/v1"),
    api_key="x",
    model=os.environ.get("PEER_MODEL", "bench-model"),
    streaming=True,
    max_retries=0,
    timeout=600,
)


async def call_model(state: MessagesState) -> dict:
    return {"messages": [await model.ainvoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("model", call_model)
builder.add_edge(START, "model")
graph = builder.compile()
