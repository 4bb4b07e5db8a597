"""/v1/threads/{thread_id}/runs, /v1/threads/runs and run steps."""

from fastapi import APIRouter, Request

from threadloom.api.openai.parsing import include_param, page_query, parse_body, read_json, validate
from threadloom.api.openai.streaming import run_event_frames, sse_response
from threadloom.api.responses import JSONResponse
from threadloom.domain.run import CreateRunRequest, CreateThreadAndRunRequest, ModifyRunRequest, SubmitToolOutputsRequest
from threadloom.domain.run_status import TERMINAL
from threadloom.domain.run_step import SEARCH_CONTENT, step_wire

router = APIRouter()

# Polling clients (create_and_poll) take their interval from the first GET's header.
POLL_AFTER_MS = "100"


def _services(request: Request):
    return request.app.state.services


def _run_response(run: dict) -> JSONResponse:
    headers = None if run["status"] in TERMINAL else {"openai-poll-after-ms": POLL_AFTER_MS}
    return JSONResponse(run, headers=headers)


@router.post("/threads/runs")
async def create_thread_and_run(request: Request):
    req, _ = await parse_body(request, CreateThreadAndRunRequest)
    include = include_param(request, (SEARCH_CONTENT,))
    services = _services(request)
    thread, run = await services.runs.create_thread_and_run(req, include)
    if req.stream:
        return sse_response(run_event_frames(services.bus, run["id"], 0, SEARCH_CONTENT in include))
    return _run_response(run)


@router.post("/threads/{thread_id}/runs")
async def create_run(request: Request, thread_id: str):
    req, _ = await parse_body(request, CreateRunRequest)
    include = include_param(request, (SEARCH_CONTENT,))
    services = _services(request)
    run = await services.runs.create(thread_id, req, include)
    if req.stream:
        return sse_response(run_event_frames(services.bus, run["id"], 0, SEARCH_CONTENT in include))
    return _run_response(run)


@router.get("/threads/{thread_id}/runs")
async def list_runs(request: Request, thread_id: str):
    return JSONResponse(await _services(request).runs.list(thread_id, page_query(request)))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(request: Request, thread_id: str, run_id: str):
    return _run_response(await _services(request).runs.get(thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}")
async def modify_run(request: Request, thread_id: str, run_id: str):
    req, _ = await parse_body(request, ModifyRunRequest)
    return _run_response(await _services(request).runs.modify(thread_id, run_id, req))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(request: Request, thread_id: str, run_id: str):
    return _run_response(await _services(request).runs.cancel(thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(request: Request, thread_id: str, run_id: str):
    req = validate(SubmitToolOutputsRequest, await read_json(request))
    services = _services(request)
    start = await services.bus.position(run_id)
    run, include = await services.runs.submit_tool_outputs(thread_id, run_id, req)
    if req.stream:
        return sse_response(run_event_frames(services.bus, run_id, start, SEARCH_CONTENT in include))
    return _run_response(run)


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_steps(request: Request, thread_id: str, run_id: str):
    content = SEARCH_CONTENT in include_param(request, (SEARCH_CONTENT,))
    page = await _services(request).runs.list_steps(thread_id, run_id, page_query(request))
    page["data"] = [step_wire(step, content) for step in page["data"]]
    return JSONResponse(page)


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def get_step(request: Request, thread_id: str, run_id: str, step_id: str):
    content = SEARCH_CONTENT in include_param(request, (SEARCH_CONTENT,))
    return JSONResponse(step_wire(await _services(request).runs.get_step(thread_id, run_id, step_id), content))
