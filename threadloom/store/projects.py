"""Projects: every assistant, thread, file, vector store and LangGraph run belongs to the
project of the API key that created it, and a request sees only its own project's.

The rule is kept here, in one place, for every statement the store runs: while a request's
project is set (`current_project`), each statement over a project's table is narrowed to
that project (SELECT, UPDATE and DELETE get a condition, INSERT gets the column's value).
Objects inside those (messages, runs, steps, vector store files, chunks) are only reached
through their parent, so the parent's scope covers them. Work no request drives (the
sweeper, ingestion, recovered runs) runs unscoped; a run keeps the project of the request
that started it (tasks inherit the context).
"""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy import Table, event
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.selectable import Alias, Join

from threadloom.store import tables

DEFAULT = "default"
SHARED = "*"  # objects of the server itself (a LangGraph graph's default assistant): every project sees them
SCOPED: frozenset[Table] = frozenset(
    {tables.assistants, tables.threads, tables.files, tables.vector_stores, tables.langgraph_runs,
     tables.graph_store_items, tables.crons, tables.thread_ttls}
)
current_project: ContextVar[str | None] = ContextVar("threadloom_project", default=None)


def _scoped_froms(node, out: list) -> None:
    if isinstance(node, Table):
        if node in SCOPED:
            out.append(node)
    elif isinstance(node, Alias):
        if node.element in SCOPED:
            out.append(node)
    elif isinstance(node, Join):
        _scoped_froms(node.left, out)
        _scoped_froms(node.right, out)


def _scope(conn, clause, multiparams, params, execution_options):
    project = current_project.get()
    if project is None:
        return clause, multiparams, params
    if isinstance(clause, Select):
        found: list = []
        for from_ in clause.get_final_froms():
            _scoped_froms(from_, found)
        for table in found:
            clause = clause.where(table.c.project.in_((project, SHARED)))
    elif isinstance(clause, (Update, Delete)) and clause.table in SCOPED:
        clause = clause.where(clause.table.c.project == project)
    elif isinstance(clause, Insert) and clause.table in SCOPED and not _names_project(multiparams, params):
        clause = clause.values(project=project)
    return clause, multiparams, params


def _names_project(multiparams, params) -> bool:
    rows = list(multiparams) if multiparams else [params]
    return any(isinstance(row, dict) and "project" in row for row in rows)


def install(engine) -> None:
    event.listen(engine, "before_execute", _scope, retval=True)
