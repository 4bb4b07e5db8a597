"""/v1/vector_stores, their files, file batches and search."""

from fastapi import APIRouter, Request

from threadloom.api.openai.parsing import page_query, parse_body
from threadloom.api.responses import JSONResponse
from threadloom.domain.vector_store import (
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    SearchRequest,
    UpdateVectorStoreFileRequest,
    UpdateVectorStoreRequest,
)

router = APIRouter()


def _service(request: Request):
    return request.app.state.services.vector_stores


@router.post("/vector_stores")
async def create_vector_store(request: Request):
    req, _ = await parse_body(request, CreateVectorStoreRequest)
    return JSONResponse(await _service(request).create(req))


@router.get("/vector_stores")
async def list_vector_stores(request: Request):
    return JSONResponse(await _service(request).list(page_query(request)))


@router.get("/vector_stores/{vector_store_id}")
async def get_vector_store(request: Request, vector_store_id: str):
    return JSONResponse(await _service(request).get(vector_store_id))


@router.post("/vector_stores/{vector_store_id}")
async def modify_vector_store(request: Request, vector_store_id: str):
    req, _ = await parse_body(request, UpdateVectorStoreRequest)
    return JSONResponse(await _service(request).modify(vector_store_id, req))


@router.delete("/vector_stores/{vector_store_id}")
async def delete_vector_store(request: Request, vector_store_id: str):
    return JSONResponse(await _service(request).delete(vector_store_id))


@router.post("/vector_stores/{vector_store_id}/search")
async def search_vector_store(request: Request, vector_store_id: str):
    req, _ = await parse_body(request, SearchRequest)
    return JSONResponse(await _service(request).search(vector_store_id, req))


@router.post("/vector_stores/{vector_store_id}/files")
async def create_vector_store_file(request: Request, vector_store_id: str):
    req, _ = await parse_body(request, CreateVectorStoreFileRequest)
    return JSONResponse(await _service(request).create_file(vector_store_id, req))


@router.get("/vector_stores/{vector_store_id}/files")
async def list_vector_store_files(request: Request, vector_store_id: str):
    status = request.query_params.get("filter")
    return JSONResponse(await _service(request).list_files(vector_store_id, page_query(request), status))


@router.get("/vector_stores/{vector_store_id}/files/{file_id}")
async def get_vector_store_file(request: Request, vector_store_id: str, file_id: str):
    return JSONResponse(await _service(request).get_file(vector_store_id, file_id))


@router.post("/vector_stores/{vector_store_id}/files/{file_id}")
async def update_vector_store_file(request: Request, vector_store_id: str, file_id: str):
    req, _ = await parse_body(request, UpdateVectorStoreFileRequest)
    return JSONResponse(await _service(request).update_file(vector_store_id, file_id, req))


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}")
async def delete_vector_store_file(request: Request, vector_store_id: str, file_id: str):
    return JSONResponse(await _service(request).delete_file(vector_store_id, file_id))


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content")
async def vector_store_file_content(request: Request, vector_store_id: str, file_id: str):
    return JSONResponse(await _service(request).file_content(vector_store_id, file_id))


@router.post("/vector_stores/{vector_store_id}/file_batches")
async def create_file_batch(request: Request, vector_store_id: str):
    req, _ = await parse_body(request, CreateFileBatchRequest)
    return JSONResponse(await _service(request).create_batch(vector_store_id, req))


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}")
async def get_file_batch(request: Request, vector_store_id: str, batch_id: str):
    return JSONResponse(await _service(request).get_batch(vector_store_id, batch_id))


@router.post("/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(request: Request, vector_store_id: str, batch_id: str):
    return JSONResponse(await _service(request).cancel_batch(vector_store_id, batch_id))


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(request: Request, vector_store_id: str, batch_id: str):
    status = request.query_params.get("filter")
    return JSONResponse(await _service(request).list_files(vector_store_id, page_query(request), status, batch_id))
