"""/v1/threads"""

from fastapi import APIRouter, Request

from threadloom.api.openai.parsing import parse_body
from threadloom.api.responses import JSONResponse
from threadloom.domain.thread import CreateThreadRequest, ModifyThreadRequest

router = APIRouter()


def _service(request: Request):
    return request.app.state.services.threads


@router.post("/threads")
async def create_thread(request: Request):
    req, _ = await parse_body(request, CreateThreadRequest)
    return JSONResponse(await _service(request).create(req))


@router.get("/threads/{thread_id}")
async def get_thread(request: Request, thread_id: str):
    return JSONResponse(await _service(request).get(thread_id))


@router.post("/threads/{thread_id}")
async def modify_thread(request: Request, thread_id: str):
    req, _ = await parse_body(request, ModifyThreadRequest)
    return JSONResponse(await _service(request).modify(thread_id, req))


@router.delete("/threads/{thread_id}")
async def delete_thread(request: Request, thread_id: str):
    runs = request.app.state.services.runs
    active = await runs.active_runs(thread_id)
    deleted = await _service(request).delete(thread_id)
    runs.abandon(active)
    return JSONResponse(deleted)
