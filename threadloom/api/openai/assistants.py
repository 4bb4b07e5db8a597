"""/v1/assistants"""

from fastapi import APIRouter, Request

from threadloom.api.openai.parsing import page_query, parse_body
from threadloom.api.responses import JSONResponse
from threadloom.domain.assistant import CreateAssistantRequest, ModifyAssistantRequest, assistant_wire

router = APIRouter()


def _service(request: Request):
    return request.app.state.services.assistants


@router.post("/assistants")
async def create_assistant(request: Request):
    req, _ = await parse_body(request, CreateAssistantRequest)
    return JSONResponse(assistant_wire(await _service(request).create(req)))


@router.get("/assistants")
async def list_assistants(request: Request):
    return JSONResponse(await _service(request).list(page_query(request)))


@router.get("/assistants/{assistant_id}")
async def get_assistant(request: Request, assistant_id: str):
    return JSONResponse(assistant_wire(await _service(request).get(assistant_id)))


@router.post("/assistants/{assistant_id}")
async def modify_assistant(request: Request, assistant_id: str):
    req, _ = await parse_body(request, ModifyAssistantRequest)
    return JSONResponse(assistant_wire(await _service(request).modify(assistant_id, req)))


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(request: Request, assistant_id: str):
    return JSONResponse(await _service(request).delete(assistant_id))
