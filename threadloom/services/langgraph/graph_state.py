"""The state of a thread that runs one of the user's graphs, read from (and written to)
its checkpoints through the graph itself: get_state, history, update_state, as
LangGraph's server shows them (ThreadState objects)."""

from __future__ import annotations

from langgraph.types import StateSnapshot, StateUpdate

from threadloom.services.langgraph.errors import BadRequest, NotFound, Unprocessable
from threadloom.services.langgraph.graph_values import jsonable

EMPTY_STATE = {
    "values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None, "checkpoint": None,
    "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None,
}


def _checkpoint_of(config: dict | None) -> dict | None:
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    checkpoint = {"thread_id": configurable["thread_id"], "checkpoint_ns": configurable.get("checkpoint_ns") or "",
                  "checkpoint_id": configurable["checkpoint_id"]}
    if "checkpoint_map" in configurable:
        checkpoint["checkpoint_map"] = configurable["checkpoint_map"]
    return checkpoint


def update_response(checkpoint: dict | None) -> dict:
    """What POST /threads/{id}/state answers: the new checkpoint, and (as LangGraph's
    server adds) its id and its config's `configurable`."""
    if checkpoint is None:
        return {"checkpoint": None}
    return {"checkpoint": checkpoint, "checkpoint_id": checkpoint["checkpoint_id"], "configurable": dict(checkpoint)}


def _interrupt(interrupt) -> dict:
    return {"id": interrupt.id, "value": interrupt.value}


def state_wire(state: StateSnapshot) -> dict:
    """A StateSnapshot as LangGraph's ThreadState (JSON types only)."""
    tasks = []
    for task in state.tasks:
        tasks.append({
            "id": task.id,
            "name": task.name,
            "path": list(task.path),
            "error": jsonable(task.error) if task.error is not None else None,
            "interrupts": [_interrupt(i) for i in task.interrupts],
            "checkpoint": task.state["configurable"] if task.state is not None and not isinstance(task.state, StateSnapshot) else None,
            "state": state_wire(task.state) if isinstance(task.state, StateSnapshot) else None,
            "result": getattr(task, "result", None),
        })
    parent = _checkpoint_of(state.parent_config)
    checkpoint = _checkpoint_of(state.config)
    return jsonable({
        "values": state.values,
        "next": list(state.next),
        "tasks": tasks,
        "metadata": state.metadata,
        "created_at": state.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": [_interrupt(i) for i in state.interrupts],
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    })


def thread_summary(state: StateSnapshot, error: dict | None = None) -> dict:
    """What the thread object shows of its graph's state (kept on the thread row after
    every run, so listing threads reads no checkpoints)."""
    interrupts: dict[str, list] = {}
    for task in state.tasks:
        if task.interrupts:
            interrupts[task.id] = [_interrupt(i) for i in task.interrupts]
    if error is not None:
        status = "error"
    elif state.next or interrupts:
        status = "interrupted"
    else:
        status = "idle"
    return {"values": jsonable(state.values) if state.values is not None else {}, "status": status,
            "interrupts": jsonable(interrupts), "error": error}


def thread_config(thread_id: str, checkpoint: dict | None = None, checkpoint_id: str | None = None) -> dict:
    configurable: dict = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint:
        for key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map"):
            if checkpoint.get(key) is not None:
                configurable[key] = checkpoint[key]
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


async def read_state(graph, thread_id: str, *, checkpoint: dict | None = None, checkpoint_id: str | None = None,
                     subgraphs: bool = False) -> dict:
    config = thread_config(thread_id, checkpoint, checkpoint_id)
    state = await graph.aget_state(config, subgraphs=subgraphs)
    wanted = config["configurable"].get("checkpoint_id")
    if wanted and state.config is None:
        raise NotFound(f"Checkpoint {wanted} not found")
    if state.config is None and not state.values:
        return dict(EMPTY_STATE)
    return state_wire(state)


async def read_history(graph, thread_id: str, *, limit: int, before: dict | str | None, metadata: dict | None,
                       checkpoint: dict | None) -> list[dict]:
    if isinstance(before, str):
        before = {"checkpoint_id": before}
    elif isinstance(before, dict) and isinstance(before.get("configurable"), dict):
        before = before["configurable"]
    before_config = thread_config(thread_id, before) if before else None
    states = []
    async for state in graph.aget_state_history(thread_config(thread_id, checkpoint), filter=metadata or None,
                                                before=before_config, limit=limit):
        states.append(state_wire(state))
    return states


async def write_state(graph, thread_id: str, values, *, as_node: str | None, checkpoint: dict | None,
                      checkpoint_id: str | None) -> dict:
    config = thread_config(thread_id, checkpoint, checkpoint_id)
    try:
        written = await graph.aupdate_state(config, values, as_node=as_node)
    except (ValueError, KeyError, TypeError) as exc:  # the graph refuses the update (unknown node, ambiguous)
        raise BadRequest(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        if type(exc).__name__ in ("InvalidUpdateError", "EmptyChannelError"):
            raise BadRequest(f"{type(exc).__name__}: {exc}") from None
        raise
    return update_response(_checkpoint_of(written))


async def write_supersteps(graph, thread_id: str, supersteps: list) -> None:
    """State written as if each superstep's nodes had run, one checkpoint per superstep."""
    steps = [[StateUpdate(u.values, u.as_node, u.task_id) for u in step.updates] for step in supersteps]
    try:
        await graph.abulk_update_state(thread_config(thread_id), steps)
    except (ValueError, KeyError, TypeError) as exc:  # an unknown node, an ambiguous update
        raise Unprocessable(f"supersteps: {type(exc).__name__}: {exc}") from None
    except Exception as exc:
        if type(exc).__name__ in ("InvalidUpdateError", "EmptyChannelError"):
            raise Unprocessable(f"supersteps: {type(exc).__name__}: {exc}") from None
        raise


class GraphThreadStates:
    """A user graph thread's state, history and updates, through its graph."""

    def __init__(self, catalog, checkpointer, store):
        self.catalog = catalog
        self.checkpointer = checkpointer
        self.store = store

    def serves(self, graph_id: str | None) -> bool:
        return self.catalog.user_graph(graph_id) is not None

    async def _graph(self, graph_id: str, thread_id: str):
        return await self.catalog.user_graph(graph_id).build(thread_config(thread_id), self.checkpointer, self.store)

    async def state(self, graph_id: str, thread_id: str, **options) -> dict:
        return await read_state(await self._graph(graph_id, thread_id), thread_id, **options)

    async def history(self, graph_id: str, thread_id: str, **options) -> list[dict]:
        return await read_history(await self._graph(graph_id, thread_id), thread_id, **options)

    async def write_supersteps(self, graph_id: str, thread_id: str, supersteps: list) -> dict:
        """The thread's summary after them."""
        graph = await self._graph(graph_id, thread_id)
        await write_supersteps(graph, thread_id, supersteps)
        return thread_summary(await graph.aget_state(thread_config(thread_id)))

    async def update(self, graph_id: str, thread_id: str, values, **options) -> tuple[dict, dict]:
        """The new checkpoint, and the thread's summary after it."""
        graph = await self._graph(graph_id, thread_id)
        written = await write_state(graph, thread_id, values, **options)
        return written, thread_summary(await graph.aget_state(thread_config(thread_id)))
