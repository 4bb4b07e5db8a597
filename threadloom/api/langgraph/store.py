"""/store: LangGraph's long-term memory, the same items the user's graphs read and write
as their store."""

from __future__ import annotations

from contextlib import contextmanager

from fastapi import APIRouter, Request
from langgraph.store.base import NOT_PROVIDED, InvalidNamespaceError, Item, SearchItem
from starlette.responses import Response

from threadloom.api.langgraph.errors import parse_body
from threadloom.api.responses import JSONResponse
from threadloom.services.langgraph.errors import Unprocessable
from threadloom.services.langgraph.requests import StoreDelete, StoreNamespaces, StorePut, StoreSearch
from threadloom.domain.errors import Unavailable
from threadloom.retrieval.embedders import EmbeddingError
from threadloom.store.graph_items import RefusedItem

router = APIRouter()


def _store(request: Request):
    return request.app.state.services.langgraph.store


@contextmanager
def _store_refusals():
    """What the store refuses and the request models let through (a namespace empty to
    put, a root label "langgraph", a bad prefix or suffix label, a NUL character): bad
    input, a 422. An embedder that fails (store.index) is the server's trouble."""
    try:
        yield
    except (InvalidNamespaceError, RefusedItem) as exc:
        raise Unprocessable(str(exc)) from None
    except EmbeddingError as exc:  # store.index: the embedder could not embed the value or query
        raise Unavailable(f"The store's embedding model failed: {exc}") from None


def item_wire(item: Item) -> dict:
    out = {"namespace": list(item.namespace), "key": item.key, "value": item.value,
           "created_at": item.created_at.isoformat(), "updated_at": item.updated_at.isoformat()}
    if isinstance(item, SearchItem):
        out["score"] = item.score
    return out


@router.put("/store/items")
async def put_item(request: Request):
    req = await parse_body(request, StorePut)
    with _store_refusals():
        # No ttl: the store's default (langgraph.json's store.ttl), if it has one.
        await _store(request).aput(tuple(req.namespace), req.key, req.value, index=req.index,
                                   ttl=NOT_PROVIDED if req.ttl is None else req.ttl)
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(request: Request):
    namespace = tuple((request.query_params.get("namespace") or "").split("."))
    if any(not label for label in namespace):
        raise Unprocessable("Namespace labels must be non-empty strings without periods")
    key = request.query_params.get("key")
    if not key:
        raise Unprocessable("Key is required")
    refresh = request.query_params.get("refresh_ttl")
    with _store_refusals():
        item = await _store(request).aget(namespace, key, refresh_ttl=None if refresh is None else refresh.lower() == "true")
    return JSONResponse(item_wire(item) if item is not None else None)


@router.delete("/store/items")
async def delete_item(request: Request):
    req = await parse_body(request, StoreDelete)
    with _store_refusals():
        await _store(request).adelete(tuple(req.namespace), req.key)
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(request: Request):
    req = await parse_body(request, StoreSearch)
    with _store_refusals():
        items = await _store(request).asearch(tuple(req.namespace_prefix or ()), query=req.query, filter=req.filter,
                                              limit=req.limit, offset=req.offset, refresh_ttl=req.refresh_ttl)
    return JSONResponse({"items": [item_wire(i) for i in items]})


@router.post("/store/namespaces")
async def list_namespaces(request: Request):
    req = await parse_body(request, StoreNamespaces)
    with _store_refusals():
        namespaces = await _store(request).alist_namespaces(
            prefix=tuple(req.prefix) if req.prefix else None, suffix=tuple(req.suffix) if req.suffix else None,
            max_depth=req.max_depth, limit=req.limit, offset=req.offset)
    return JSONResponse({"namespaces": [list(n) for n in namespaces]})
