"""/v1/files"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import StreamingResponse

from threadloom.api.openai.parsing import page_query
from threadloom.api.responses import JSONResponse
from threadloom.domain.errors import InvalidRequest
from threadloom.domain.file import FileTooLarge
from threadloom.store.vector_stores import PART_BYTES

router = APIRouter()

_FIELDS = {"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"}


def _service(request: Request):
    return request.app.state.services.files


def _expires_after(form) -> dict | None:
    anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequest(
            f"Invalid value: '{anchor}'. Supported values are: 'created_at'.", param="expires_after.anchor", code="invalid_value"
        )
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        raise InvalidRequest(
            f"Invalid type for 'expires_after.seconds': expected an integer, but got '{seconds}' instead.",
            param="expires_after.seconds",
            code="invalid_type",
        ) from None
    if not 3600 <= value <= 2592000:
        raise InvalidRequest(
            f"Invalid 'expires_after.seconds': expected a value between 3600 and 2592000, but got {value} instead.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return {"anchor": "created_at", "seconds": value}


async def _read_parts(upload: UploadFile, max_bytes: int) -> list[bytes]:
    parts, size = [], 0
    while data := await upload.read(PART_BYTES):
        size += len(data)
        if size > max_bytes:
            raise FileTooLarge(
                f"File is too large. The maximum file size is {max_bytes} bytes.", param="file", code="file_too_large"
            )
        parts.append(data)
    return parts


@router.post("/files")
async def create_file(request: Request):
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(
            "Invalid Content-Type header: uploads must be sent as multipart/form-data.", param=None, code="invalid_content_type"
        )
    async with request.form(max_files=1, max_fields=16) as form:
        for key in form.keys():
            if key not in _FIELDS:
                raise InvalidRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
        purpose = form.get("purpose")
        if not isinstance(purpose, str) or not purpose:
            raise InvalidRequest("Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter")
        expires_after = _expires_after(form)
        service = _service(request)
        parts = await _read_parts(upload, service.max_bytes)
        filename = upload.filename or "upload"
    return JSONResponse(await service.create(filename, purpose, parts, expires_after))


@router.get("/files")
async def list_files(request: Request):
    query = page_query(request, default_limit=10000, max_limit=10000)
    return JSONResponse(await _service(request).list(query, request.query_params.get("purpose") or None))


@router.get("/files/{file_id}")
async def get_file(request: Request, file_id: str):
    return JSONResponse(await _service(request).get(file_id))


@router.delete("/files/{file_id}")
async def delete_file(request: Request, file_id: str):
    deleted, _ = await _service(request).delete(file_id)
    return JSONResponse(deleted)


@router.get("/files/{file_id}/content")
async def file_content(request: Request, file_id: str):
    body, parts = await _service(request).content(file_id)
    return StreamingResponse(
        parts,
        media_type="application/octet-stream",
        headers={"content-length": str(body["bytes"]), "content-disposition": f"attachment; filename*=UTF-8''{quote(body['filename'])}"},
    )
