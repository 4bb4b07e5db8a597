"""The user's own graphs, named in a `langgraph.json` (the file LangGraph's CLI reads):

    {"dependencies": ["."], "graphs": {"researcher": "./agents/researcher.py:graph"}, "env": ".env"}

A graph is `path/to/file.py:name` or `package.module:name`, relative to the file. `name`
is a compiled graph, a `StateGraph` (compiled here), or a factory: a function (sync or
async) taking the run's config, or nothing, and returning one of those. `dependencies`
are put on `sys.path` (LangGraph's CLI installs them into its image; here they are
expected to be installed already or be plain source folders). `env` is a dotenv file or
a mapping, applied to this process before the graphs are imported. `checkpointer.ttl`
(threads deleted, or pruned to their latest checkpoint, some minutes after they are made)
and `store.ttl` (items' default lifetime, refreshed on read) are applied as LangGraph's
server applies them; `store.index` gives the store semantic search, with the server's own
embedder (`--embeddings`) whatever model `embed` names. What this server does not do stops
it with one line (`auth`: use --api-key; `encryption`), and the deployment options that
change nothing here (`http`, `ui`, `webhooks`) are logged as ignored.

Each run gets the graph with threadloom's checkpointer and store attached.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel


log = logging.getLogger("threadloom.langgraph")

# Keys of langgraph.json that only say how LangGraph's CLI builds its image.
_BUILD_KEYS = frozenset({"$schema", "python_version", "node_version", "pip_config_file", "pip_installer", "base_image",
                         "image_distro", "dockerfile_lines", "keep_pkg_tools", "api_version"})
_REFUSED = {
    "auth": "custom authentication is not supported; use --api-key",
    "encryption": "encryption of stored data is not supported",
}
_IGNORED = frozenset({"http", "ui", "ui_config", "webhooks"})


class GraphConfigError(Exception):
    """langgraph.json, or a graph it names, cannot be loaded (said in one line at startup)."""


@dataclass(frozen=True)
class ThreadTTL:
    """What happens to a thread `minutes` after it is made (or its TTL is set): `delete`
    it, or `keep_latest` (drop all but its latest checkpoint; again every `minutes`)."""

    strategy: str
    minutes: float


@dataclass
class GraphConfig:
    graphs: dict[str, "UserGraph"] = field(default_factory=dict)
    thread_ttl: ThreadTTL | None = None  # checkpointer.ttl: the default of threads made without one
    store_ttl: dict | None = None  # store.ttl, as LangGraph's TTLConfig
    store_index: dict | None = None  # store.index: {"fields": [...], "embed": ..., "dims": ...}
    sweep_seconds: float = 5.0  # how often expired threads are looked for


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
        # Named after its graph id, as LangGraph's server names it (the root of `events`).
        return value.copy(update={"checkpointer": checkpointer, "store": store, "name": graph_id})
    raise GraphConfigError(f"graph '{graph_id}' is a {type(value).__name__}, not a LangGraph graph")


def load_config(path: str | Path) -> GraphConfig:
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
    loaded = GraphConfig()
    _runtime_options(config, loaded, path)
    _apply_env(config.get("env"), base)
    graphs = loaded.graphs
    for graph_id, spec in config["graphs"].items():
        if isinstance(spec, dict):  # {"path": "...", "description": "..."}
            spec = spec.get("path")
        if not isinstance(spec, str) or ":" not in spec:
            raise GraphConfigError(f"{path}: graph '{graph_id}' must be 'file.py:name' or 'module:name', not {spec!r}")
        graphs[graph_id] = UserGraph(graph_id, spec, _import(graph_id, spec, base))
    return loaded


def _minutes(value, where: str, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise GraphConfigError(f"{path}: {where} must be a number of minutes above 0, not {value!r}")
    return float(value)


def _section(config: dict, name: str, path: Path) -> dict:
    section = config.get(name) or {}
    if not isinstance(section, dict):
        raise GraphConfigError(f"{path}: '{name}' must be an object")
    return section


def _runtime_options(config: dict, loaded: GraphConfig, path: Path) -> None:
    """What langgraph.json asks of the server besides its graphs."""
    for key, why in _REFUSED.items():
        if config.get(key):
            raise GraphConfigError(f"{path}: '{key}': {why}")
    store = _section(config, "store", path)
    if store.get("index"):
        index = store["index"]
        fields = index.get("fields") if isinstance(index, dict) else None
        if not isinstance(index, dict) or not (fields is None or (
                isinstance(fields, list) and fields and all(isinstance(f, str) and f for f in fields))):
            raise GraphConfigError(f"{path}: store.index must be an object whose 'fields' is a list of JSON paths")
        loaded.store_index = {"fields": tuple(fields or ["$"]), "embed": index.get("embed"), "dims": index.get("dims")}
    checkpointer = _section(config, "checkpointer", path)
    sweeps = []
    if checkpointer.get("ttl"):
        ttl = checkpointer["ttl"]
        strategy = ttl.get("strategy", "delete")
        if strategy not in ("delete", "keep_latest"):
            raise GraphConfigError(f"{path}: checkpointer.ttl.strategy must be 'delete' or 'keep_latest'")
        minutes = _minutes(ttl.get("default_ttl"), "checkpointer.ttl.default_ttl", path)
        loaded.thread_ttl = ThreadTTL(strategy, minutes) if minutes else None
        sweeps.append(_minutes(ttl.get("sweep_interval_minutes"), "checkpointer.ttl.sweep_interval_minutes", path))
    if store.get("ttl"):
        ttl = store["ttl"]
        loaded.store_ttl = {"refresh_on_read": bool(ttl.get("refresh_on_read", True)),
                            "default_ttl": _minutes(ttl.get("default_ttl"), "store.ttl.default_ttl", path)}
        _minutes(ttl.get("sweep_interval_minutes"), "store.ttl.sweep_interval_minutes", path)  # expired items are never read
    sweeps = [m for m in sweeps if m]
    if sweeps:
        loaded.sweep_seconds = min(sweeps) * 60
    other = set(checkpointer) - {"ttl"}
    ignored = sorted({k for k in config if k in _IGNORED and config[k]} | {f"checkpointer.{k}" for k in other})
    unknown = sorted(set(config) - _BUILD_KEYS - _IGNORED - set(_REFUSED) - {"graphs", "dependencies", "env", "store",
                                                                            "checkpointer"})
    if ignored or unknown:
        log.warning("langgraph.json: ignored (this server does not do it): %s", ", ".join(ignored + unknown))


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
