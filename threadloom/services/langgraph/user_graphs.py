"""The user's own graphs, named in a `langgraph.json` (the file LangGraph's CLI reads):

    {"dependencies": ["."], "graphs": {"researcher": "./agents/researcher.py:graph"}, "env": ".env"}

A graph is `path/to/file.py:name` or `package.module:name`, relative to the file. `name`
is a compiled graph, a `StateGraph` (compiled here), or a factory: a function (sync or
async) taking the run's config, or nothing, and returning one of those. `dependencies`
are put on `sys.path` (LangGraph's CLI installs them into its image; here they are
expected to be installed already or be plain source folders). `env` is a dotenv file or
a mapping, applied to this process before the graphs are imported.

Each run gets the graph with threadloom's checkpointer and store attached.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel


class GraphConfigError(Exception):
    """langgraph.json, or a graph it names, cannot be loaded (said in one line at startup)."""


@dataclass
class UserGraph:
    graph_id: str
    source: str  # as written in langgraph.json
    value: Any  # a compiled graph, a StateGraph, or a factory
    _compiled: Pregel | None = field(default=None, repr=False)

    @property
    def is_factory(self) -> bool:
        return not isinstance(self.value, (Pregel, StateGraph))

    async def build(self, config: dict, checkpointer, store) -> Pregel:
        """The graph a run executes, with the server's checkpointer and store."""
        value = self.value
        if self.is_factory:
            value = await _call_factory(value, config)
        return _attach(value, checkpointer, store, self.graph_id)

    def schema_graph(self) -> Pregel:
        """A graph to read schemas and draw from (a factory is called once, with an empty config)."""
        if self._compiled is None:
            if self.is_factory:
                raise GraphConfigError(f"graph '{self.graph_id}' is a factory")
            self._compiled = _attach(self.value, None, None, self.graph_id)
        return self._compiled


async def _call_factory(factory, config: dict):
    params = inspect.signature(factory).parameters
    result = factory(config) if params else factory()
    if inspect.isawaitable(result):
        result = await result
    return result


def _attach(value, checkpointer, store, graph_id: str) -> Pregel:
    if isinstance(value, StateGraph):
        return value.compile(checkpointer=checkpointer, store=store, name=graph_id)
    if isinstance(value, Pregel):
        return value.copy(update={"checkpointer": checkpointer, "store": store})
    raise GraphConfigError(f"graph '{graph_id}' is a {type(value).__name__}, not a LangGraph graph")


def load_config(path: str | Path) -> dict[str, UserGraph]:
    """Read langgraph.json and import every graph it names (errors say which and why)."""
    path = Path(path).resolve()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise GraphConfigError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise GraphConfigError(f"{path}: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("graphs"), dict) or not config["graphs"]:
        raise GraphConfigError(f"{path}: 'graphs' must map graph ids to 'file.py:name' or 'module:name'")
    base = path.parent
    for dependency in config.get("dependencies") or []:
        if isinstance(dependency, str) and (dependency.startswith(".") or dependency.startswith("/")):
            folder = str((base / dependency).resolve())
            if folder not in sys.path:
                sys.path.insert(0, folder)
    _apply_env(config.get("env"), base)
    graphs: dict[str, UserGraph] = {}
    for graph_id, spec in config["graphs"].items():
        if isinstance(spec, dict):  # {"path": "...", "description": "..."}
            spec = spec.get("path")
        if not isinstance(spec, str) or ":" not in spec:
            raise GraphConfigError(f"{path}: graph '{graph_id}' must be 'file.py:name' or 'module:name', not {spec!r}")
        graphs[graph_id] = UserGraph(graph_id, spec, _import(graph_id, spec, base))
    return graphs


def _apply_env(env, base: Path) -> None:
    if isinstance(env, dict):
        os.environ.update({str(k): str(v) for k, v in env.items()})
    elif isinstance(env, str):
        env_path = base / env
        if not env_path.is_file():
            raise GraphConfigError(f"env file {env_path} not found")
        for line in env_path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.removeprefix("export ").partition("=")
            os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def _import(graph_id: str, spec: str, base: Path):
    target, _, name = spec.rpartition(":")
    try:
        if target.endswith(".py"):
            file = (base / target).resolve()
            if not file.is_file():
                raise GraphConfigError(f"graph '{graph_id}': {file} not found")
            module_name = "threadloom_graph_" + "_".join(file.with_suffix("").parts[-3:]).replace("-", "_")
            module_spec = importlib.util.spec_from_file_location(module_name, file)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            if str(file.parent) not in sys.path:  # its sibling modules import as under LangGraph's CLI
                sys.path.insert(0, str(file.parent))
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except GraphConfigError:
        raise
    except Exception as exc:
        raise GraphConfigError(f"graph '{graph_id}' ({spec}): {type(exc).__name__}: {exc}") from exc
    try:
        value = getattr(module, name)
    except AttributeError:
        raise GraphConfigError(f"graph '{graph_id}' ({spec}): the module has no '{name}'") from None
    if not isinstance(value, (Pregel, StateGraph)) and not callable(value):
        raise GraphConfigError(f"graph '{graph_id}' ({spec}): '{name}' is a {type(value).__name__}, not a graph")
    return value
