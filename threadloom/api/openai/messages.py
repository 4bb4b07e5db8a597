"""/v1/threads/{thread_id}/messages"""

from fastapi import APIRouter, Request

from threadloom.api.openai.parsing import page_query, parse_body
from threadloom.api.responses import JSONResponse
from threadloom.domain.message import CreateMessageRequest, ModifyMessageRequest

router = APIRouter()


def _service(request: Request):
    return request.app.state.services.messages


@router.post("/threads/{thread_id}/messages")
async def create_message(request: Request, thread_id: str):
    req, _ = await parse_body(request, CreateMessageRequest)
    return JSONResponse(await _service(request).create(thread_id, req))


@router.get("/threads/{thread_id}/messages")
async def list_messages(request: Request, thread_id: str):
    run_id = request.query_params.get("run_id") or None
    return JSONResponse(await _service(request).list(thread_id, page_query(request), run_id))


@router.get("/threads/{thread_id}/messages/{message_id}")
async def get_message(request: Request, thread_id: str, message_id: str):
    return JSONResponse(await _service(request).get(thread_id, message_id))


@router.post("/threads/{thread_id}/messages/{message_id}")
async def modify_message(request: Request, thread_id: str, message_id: str):
    req, _ = await parse_body(request, ModifyMessageRequest)
    return JSONResponse(await _service(request).modify(thread_id, message_id, req))


@router.delete("/threads/{thread_id}/messages/{message_id}")
async def delete_message(request: Request, thread_id: str, message_id: str):
    return JSONResponse(await _service(request).delete(thread_id, message_id))
