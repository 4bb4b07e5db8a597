"""/runs/crons and /threads/{thread_id}/runs/crons: runs on a schedule."""

from __future__ import annotations

from fastapi import APIRouter, Request

from threadloom.api.langgraph.errors import parse_body
from threadloom.api.responses import JSONResponse
from threadloom.services.langgraph.requests import CronCount, CronCreate, CronPatch, CronSearch

router = APIRouter()


def _crons(request: Request):
    return request.app.state.services.langgraph.crons


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(request: Request, thread_id: str):
    return JSONResponse(await _crons(request).create(thread_id, await parse_body(request, CronCreate)))


@router.post("/runs/crons")
async def create_cron(request: Request):
    return JSONResponse(await _crons(request).create(None, await parse_body(request, CronCreate)))


@router.post("/runs/crons/search")
async def search_crons(request: Request):
    return JSONResponse(await _crons(request).search(await parse_body(request, CronSearch)))


@router.post("/runs/crons/count")
async def count_crons(request: Request):
    return JSONResponse(await _crons(request).count(await parse_body(request, CronCount)))


@router.get("/runs/crons/{cron_id}")
async def get_cron(request: Request, cron_id: str):
    return JSONResponse(await _crons(request).get(cron_id))


@router.patch("/runs/crons/{cron_id}")
async def patch_cron(request: Request, cron_id: str):
    return JSONResponse(await _crons(request).patch(cron_id, await parse_body(request, CronPatch)))


@router.delete("/runs/crons/{cron_id}")
async def delete_cron(request: Request, cron_id: str):
    await _crons(request).delete(cron_id)
    return JSONResponse({})
