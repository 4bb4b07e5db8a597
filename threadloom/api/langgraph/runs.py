"""/threads/{thread_id}/runs and threadless /runs: create (background), stream, wait,
join, join the stream, cancel, list, get, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from threadloom.api.langgraph.errors import bool_param, int_param, parse_body
from threadloom.api.langgraph.streaming import json_when_ready, run_locations, sse_response
from threadloom.api.responses import JSONResponse
from threadloom.services.langgraph.errors import Unprocessable
from threadloom.services.langgraph.requests import RunBatch, RunCreate, RunsCancel

router = APIRouter()
SELECTABLE = {"run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata", "kwargs",
              "multitask_strategy"}


def _runs(request: Request):
    return request.app.state.services.langgraph.runs


async def _create(request: Request, thread_id: str | None):
    service = _runs(request)
    prepared = service.prepare(thread_id, await parse_body(request, RunCreate))
    row = await service.create(prepared)
    return service, prepared, row


# -- stateful -----------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs")
async def create_run(request: Request, thread_id: str):
    _, _, row = await _create(request, thread_id)
    return JSONResponse(row.wire(), headers={"Content-Location": f"/threads/{thread_id}/runs/{row.id}"})


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(request: Request, thread_id: str):
    service, prepared, row = await _create(request, thread_id)
    frames = service.stream(row, prepared.modes, cancel_on_disconnect=prepared.payload.on_disconnect == "cancel")
    return sse_response(frames, run_locations(thread_id, row.id, "/stream"))


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(request: Request, thread_id: str):
    service, prepared, row = await _create(request, thread_id)
    cancel = prepared.payload.on_disconnect == "cancel"
    return json_when_ready(lambda: service.result(row), run_locations(thread_id, row.id, "/join"),
                           on_close=_cancel_unless(service, row, cancel))


@router.get("/threads/{thread_id}/runs")
async def list_runs(request: Request, thread_id: str):
    runs = await _runs(request).list(
        thread_id,
        limit=int_param(request, "limit", 10, 0, 10_000),
        offset=int_param(request, "offset", 0, 0, 10**9),
        status=request.query_params.get("status") or None,
    )
    select = request.query_params.getlist("select")
    if select:
        invalid = [s for s in select if s not in SELECTABLE]
        if invalid:
            raise Unprocessable(f"Invalid select columns: {invalid}. Expected: {sorted(SELECTABLE)}")
        runs = [{k: r[k] for k in select} for r in runs]
    return JSONResponse(runs)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(request: Request, thread_id: str, run_id: str):
    return JSONResponse((await _runs(request).get_row(thread_id, run_id)).wire())


@router.delete("/threads/{thread_id}/runs/{run_id}")
async def delete_run(request: Request, thread_id: str, run_id: str):
    await _runs(request).delete(thread_id, run_id)
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(request: Request, thread_id: str, run_id: str):
    service = _runs(request)
    row = await service.get_row(thread_id, run_id)
    return json_when_ready(lambda: service.result(row), run_locations(thread_id, run_id, "/join"))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_run_stream(request: Request, thread_id: str, run_id: str):
    service = _runs(request)
    row = await service.get_row(thread_id, run_id)
    modes = [m for m in request.query_params.getlist("stream_mode") if m] or row.body["kwargs"]["stream_mode"]
    last_event_id = request.headers.get("last-event-id") or None
    frames = service.stream(
        row, modes,
        last_event_id=last_event_id,
        from_start=bool(row.body["kwargs"].get("resumable")) or last_event_id is not None,
        cancel_on_disconnect=bool_param(request, "cancel_on_disconnect"),
    )
    return sse_response(frames, run_locations(thread_id, run_id, "/stream"))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(request: Request, thread_id: str, run_id: str):
    service = _runs(request)
    wait = bool_param(request, "wait")
    action = request.query_params.get("action") or "interrupt"
    if action not in ("interrupt", "rollback"):
        action = "interrupt"
    row = await service.cancel(thread_id, run_id, wait=False, action=action)
    if not wait:
        return Response(status_code=202)

    async def finished():
        done = await service.until_done(row)
        await service.pump(thread_id)  # a rollback deletes what the run wrote once it stopped
        return {} if action == "rollback" else await service.result(done)

    return json_when_ready(finished, run_locations(thread_id, run_id, "/join"))


# -- threadless ---------------------------------------------------------------------------


@router.post("/runs")
async def create_stateless_run(request: Request):
    _, _, row = await _create(request, None)
    return JSONResponse(row.wire(), headers={"Content-Location": f"/runs/{row.id}"})


@router.post("/runs/stream")
async def stream_stateless_run(request: Request):
    service, prepared, row = await _create(request, None)
    service.hold(row.id)

    async def frames():
        try:
            async for chunk in service.stream(row, prepared.modes,
                                              cancel_on_disconnect=prepared.payload.on_disconnect == "cancel"):
                yield chunk
        finally:
            service.release(row.id)

    return sse_response(frames(), run_locations(None, row.id, "/stream"))


@router.post("/runs/wait")
async def wait_stateless_run(request: Request):
    service, prepared, row = await _create(request, None)
    service.hold(row.id)
    cancel = prepared.payload.on_disconnect == "cancel"
    on_close = _cancel_unless(service, row, cancel)

    def close(delivered: bool) -> None:
        on_close(delivered)
        service.release(row.id)

    return json_when_ready(lambda: service.result(row), run_locations(row.thread_id, row.id, "/join"), on_close=close)


@router.post("/runs/batch")
async def create_stateless_batch(request: Request):
    service = _runs(request)
    # Every payload is validated and prepared before any run is made: a bad one makes none.
    prepared = [service.prepare(None, payload) for payload in (await parse_body(request, RunBatch)).root]
    return JSONResponse([(await service.create(p)).wire() for p in prepared])


@router.post("/runs/cancel")
async def cancel_runs(request: Request):
    req = await parse_body(request, RunsCancel)
    action = request.query_params.get("action") or "interrupt"
    await _runs(request).cancel_many(req.thread_id, req.run_ids, req.status, action if action in ("interrupt", "rollback") else "interrupt")
    return Response(status_code=204)


def _cancel_unless(service, row, cancel_on_disconnect: bool):
    def on_close(delivered: bool) -> None:
        if cancel_on_disconnect and not delivered:
            service.cancel_later(row)

    return on_close
