"""/assistants"""

from fastapi import APIRouter, Request
from starlette.responses import Response

from threadloom.api.langgraph.errors import parse_body
from threadloom.api.responses import JSONResponse
from threadloom.services.langgraph.requests import (
    AssistantCount,
    AssistantCreate,
    AssistantPatch,
    AssistantSearch,
    AssistantSetLatest,
    AssistantVersions,
)

router = APIRouter()


def _service(request: Request):
    return request.app.state.services.langgraph.assistants


def pagination_headers(total: int, following: int | None) -> dict:
    headers = {"X-Pagination-Total": str(total)}
    if following is not None:
        headers["X-Pagination-Next"] = str(following)
    return headers


@router.post("/assistants")
async def create_assistant(request: Request):
    return JSONResponse(await _service(request).create(await parse_body(request, AssistantCreate)))


@router.post("/assistants/search")
async def search_assistants(request: Request):
    page, total, following = await _service(request).search(await parse_body(request, AssistantSearch))
    return JSONResponse(page, headers=pagination_headers(total, following))


@router.post("/assistants/count")
async def count_assistants(request: Request):
    return JSONResponse(await _service(request).count(await parse_body(request, AssistantCount)))


@router.get("/assistants/{assistant_id}")
async def get_assistant(request: Request, assistant_id: str):
    return JSONResponse(await _service(request).get(assistant_id))


@router.patch("/assistants/{assistant_id}")
async def patch_assistant(request: Request, assistant_id: str):
    return JSONResponse(await _service(request).patch(assistant_id, await parse_body(request, AssistantPatch)))


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(request: Request, assistant_id: str):
    await _service(request).delete(assistant_id)
    return Response(status_code=204)


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(request: Request, assistant_id: str):
    xray_param = request.query_params.get("xray") or "false"
    xray: bool | int = int(xray_param) if xray_param.isdigit() else xray_param.lower() == "true"
    return JSONResponse(await _service(request).graph(assistant_id, xray))


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(request: Request, assistant_id: str):
    return JSONResponse(await _service(request).schemas(assistant_id))


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_assistant_subgraphs(request: Request, assistant_id: str, namespace: str | None = None):
    recurse = (request.query_params.get("recurse") or "").lower() == "true"
    return JSONResponse(await _service(request).subgraphs(assistant_id, namespace, recurse))


@router.post("/assistants/{assistant_id}/versions")
async def get_assistant_versions(request: Request, assistant_id: str):
    return JSONResponse(await _service(request).versions(assistant_id, await parse_body(request, AssistantVersions)))


@router.post("/assistants/{assistant_id}/latest")
async def set_latest_version(request: Request, assistant_id: str):
    req = await parse_body(request, AssistantSetLatest)
    return JSONResponse(await _service(request).set_latest(assistant_id, req.version))
