"""/threads (runs of a thread are in runs.py), and the stream of all a thread's runs"""

from fastapi import APIRouter, Request
from starlette.responses import Response

from threadloom.api.langgraph.assistants import pagination_headers
from threadloom.api.langgraph.errors import bool_param, int_param, parse_body
from threadloom.api.langgraph.streaming import sse_response
from threadloom.api.responses import JSONResponse
from threadloom.services.langgraph.requests import (
    ThreadCount,
    ThreadCreate,
    ThreadHistory,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadStateAtCheckpoint,
    ThreadStateUpdate,
)

router = APIRouter()


def _service(request: Request):
    return request.app.state.services.langgraph.threads


@router.post("/threads")
async def create_thread(request: Request):
    return JSONResponse(await _service(request).create(await parse_body(request, ThreadCreate)))


@router.post("/threads/search")
async def search_threads(request: Request):
    page, total, following = await _service(request).search(await parse_body(request, ThreadSearch))
    return JSONResponse(page, headers=pagination_headers(total, following))


@router.post("/threads/prune")
async def prune_threads(request: Request):
    return JSONResponse(await _service(request).prune(await parse_body(request, ThreadPrune)))


@router.post("/threads/count")
async def count_threads(request: Request):
    return JSONResponse(await _service(request).count(await parse_body(request, ThreadCount)))


@router.get("/threads/{thread_id}")
async def get_thread(request: Request, thread_id: str):
    return JSONResponse(await _service(request).get(thread_id))


@router.patch("/threads/{thread_id}")
async def patch_thread(request: Request, thread_id: str):
    return JSONResponse(await _service(request).patch(thread_id, await parse_body(request, ThreadPatch)))


@router.delete("/threads/{thread_id}")
async def delete_thread(request: Request, thread_id: str):
    await _service(request).delete(thread_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy")
async def copy_thread(request: Request, thread_id: str):
    return JSONResponse(await _service(request).copy(thread_id))


@router.get("/threads/{thread_id}/state")
async def get_thread_state(request: Request, thread_id: str):
    return JSONResponse(await _service(request).state(thread_id, subgraphs=bool_param(request, "subgraphs")))


@router.post("/threads/{thread_id}/state")
async def update_thread_state(request: Request, thread_id: str):
    return JSONResponse(await _service(request).update_state(thread_id, await parse_body(request, ThreadStateUpdate)))


@router.post("/threads/{thread_id}/state/checkpoint")
async def get_thread_state_at_checkpoint_post(request: Request, thread_id: str):
    req = await parse_body(request, ThreadStateAtCheckpoint)
    checkpoint_id = req.checkpoint.get("checkpoint_id")
    if not checkpoint_id:
        return JSONResponse(await _service(request).state(thread_id, subgraphs=bool(req.subgraphs)))
    return JSONResponse(await _service(request).state_at(thread_id, checkpoint_id, req.checkpoint, bool(req.subgraphs)))


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_thread_state_at_checkpoint(request: Request, thread_id: str, checkpoint_id: str):
    return JSONResponse(await _service(request).state_at(thread_id, checkpoint_id,
                                                         subgraphs=bool_param(request, "subgraphs")))


@router.post("/threads/{thread_id}/history")
async def post_thread_history(request: Request, thread_id: str):
    return JSONResponse(await _service(request).history(thread_id, await parse_body(request, ThreadHistory)))


@router.get("/threads/{thread_id}/history")
async def get_thread_history(request: Request, thread_id: str):
    req = ThreadHistory(limit=int_param(request, "limit", 10, 1, 1000), before=request.query_params.get("before") or None)
    return JSONResponse(await _service(request).history(thread_id, req))


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(request: Request, thread_id: str):
    modes = [m for m in request.query_params.getlist("stream_mode") if m]
    streams = request.app.state.services.langgraph.thread_streams
    batches = await streams.open(thread_id, modes, request.headers.get("last-event-id") or None)
    return sse_response(batches, {"Content-Location": f"/threads/{thread_id}/stream"})
