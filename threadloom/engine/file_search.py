"""The built-in `file_search` tool as the engine runs it: the function the model is offered,
the search over the run's vector stores, what the model is shown of the results, and the
citations its answer makes.

The model cites a result with the marker it was shown, `【{search}:{result}†{file name}】`
(as OpenAI's models write them); the finished message carries a `file_citation`
annotation for each marker that names a result of this run.
"""

from __future__ import annotations

import asyncio
import re
import time

import orjson

from threadloom.domain.errors import ServiceError
from threadloom.domain.ids import call_id

NAME = "file_search"
DEFAULT_MAX_RESULTS = 20  # OpenAI's default for its gpt-4 models
INGESTION_WAIT_SECONDS = 60.0  # a run waits this long for its stores' files to be indexed

DEFINITION = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Search the files the user has uploaded (documents, notes, code) for passages relevant to a query. "
            "Use it whenever the answer may be in the user's files. Cite the passages you use with their markers."
        ),
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for, in a few words."}},
            "required": ["query"],
        },
    },
}
_MARKER = re.compile(r"【(\d+):(\d+)†[^】]*】")


def settings_of(tools: list[dict]) -> dict | None:
    """The run's file_search tool settings, or None when it has no such tool."""
    for tool in tools:
        if tool["type"] == "file_search":
            return tool.get("file_search") or {}
    return None


def query_of(arguments: str) -> str:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments.strip()
    if isinstance(value, dict):
        query = value.get("query") or value.get("queries")
        if isinstance(query, list):
            query = " ".join(str(q) for q in query)
        return str(query or "").strip()
    return str(value).strip()


def ranking_wire(settings: dict) -> dict:
    ranking = settings.get("ranking_options") or {}
    return {"ranker": ranking.get("ranker") or "default_2024_08_21", "score_threshold": ranking.get("score_threshold", 0.0)}


class FileSearchTool:
    def __init__(self, searcher):
        self.searcher = searcher  # services.vector_stores.VectorStoreService

    async def search(self, query: str, store_ids: list[str], settings: dict) -> tuple[list[dict], str | None]:
        """Results as run steps carry them (content included: the API strips it unless asked),
        or an error the model is told of."""
        if not query:
            return [], "the search query was empty"
        deadline = time.monotonic() + INGESTION_WAIT_SECONDS
        while await self.searcher.pending_files(store_ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        ranking = ranking_wire(settings)
        try:
            hits = await self.searcher.search_stores(
                store_ids,
                [query],
                limit=settings.get("max_num_results") or DEFAULT_MAX_RESULTS,
                threshold=ranking["score_threshold"],
                hybrid=True,
            )
        except ServiceError as exc:
            return [], exc.message
        return [
            {"file_id": h["file_id"], "file_name": h["filename"], "score": h["score"], "content": [{"type": "text", "text": h["text"]}]}
            for h in hits
        ], None


def tool_call(call: str | None, results: list[dict], settings: dict) -> dict:
    return {
        "id": call or call_id(),
        "type": "file_search",
        "file_search": {"ranking_options": ranking_wire(settings), "results": results},
    }


def model_output(search_number: int | None, results: list[dict], error: str | None) -> str:
    """What the model reads back from a search. Results of an earlier run carry no marker
    (`search_number` None): citations name the results of the run that cites them."""
    if error:
        return f"The search failed: {error}"
    if not results:
        return "The search found nothing in the files."
    parts = []
    if search_number is not None:
        example = f"【{search_number}:0†{results[0]['file_name']}】"
        parts.append(f"Search results. Cite a passage you use with its marker, exactly as written (e.g. {example}).")
    for i, result in enumerate(results):
        text = "".join(c["text"] for c in result.get("content") or [])
        head = f"【{search_number}:{i}†{result['file_name']}】" if search_number is not None else f"From {result['file_name']}:"
        parts.append(f"{head}\n{text}")
    return "\n\n".join(parts)


def annotations(text: str, cited: dict[str, str]) -> list[dict]:
    """file_citation annotations for the markers in `text` that name a result of this run
    (`cited`: "search:result" -> file id). Indexes are in characters of `text`."""
    out = []
    for match in _MARKER.finditer(text):
        file_id = cited.get(f"{match.group(1)}:{match.group(2)}")
        if file_id is None:
            continue
        out.append({
            "type": "file_citation",
            "text": match.group(0),
            "start_index": match.start(),
            "end_index": match.end(),
            "file_citation": {"file_id": file_id},
        })
    return out
