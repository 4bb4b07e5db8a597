"""What the operator's tools read: readiness, Prometheus metrics, and the API's own
description (/openapi.json, and /docs: Swagger UI served from the installed
swagger-ui-bundle-v2 package, so it works with no internet)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from threadloom import __version__, metrics
from threadloom.api.responses import JSONResponse
from threadloom.store import runs as run_queries

router = APIRouter(include_in_schema=False)

DOORS = (
    ("/v1", "OpenAI Assistants API v2",
     "Assistants, threads, messages, runs, run steps, files and vector stores, as the official `openai` SDKs call them."),
    ("/", "LangGraph Agent Server API",
     "Assistants, threads, runs and stream modes as `langgraph-sdk` calls them."),
)


@router.get("/readyz")
async def ready(request: Request):
    """200 once the database answers and every model this process serves can serve; 503
    with the failing checks otherwise (a load balancer's readiness probe)."""
    checks = await request.app.state.process.readiness()
    ok = all(passed for passed, _ in checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": {name: {"ok": passed, "detail": detail}
                                                                  for name, (passed, detail) in checks.items()}}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def prometheus_metrics(request: Request):
    try:
        queued = await request.app.state.services.db.query(run_queries.count_queued)
        metrics.QUEUED_RUNS.set(queued)
    except Exception:
        pass  # the database is out of reach: the other metrics still say so
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def openapi_document(app: FastAPI) -> dict:
    """FastAPI's description of every route, each under the door it belongs to, with the
    bearer key both doors accept."""
    if app.openapi_schema is None:
        document = app.openapi()
        document["info"].update(version=__version__, description=(
            "threadloom serves two APIs over one store. The OpenAI door is described in full by OpenAI's own "
            "OpenAPI document (bodies are validated against it); this document lists every route of both doors."))
        document["tags"] = [{"name": name, "description": text} for _, name, text in DOORS]
        document.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
        for path, operations in document.get("paths", {}).items():
            door = DOORS[0][1] if path.startswith("/v1") else DOORS[1][1]
            for operation in operations.values():
                operation["tags"] = [door]
        app.openapi_schema = document
    return app.openapi_schema


@router.get("/openapi.json")
async def openapi(request: Request):
    return JSONResponse(openapi_document(request.app))


@router.get("/docs")
async def docs():
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="threadloom API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


def mount_docs_assets(app: FastAPI) -> None:
    import swagger_ui_bundle
    from starlette.staticfiles import StaticFiles

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
