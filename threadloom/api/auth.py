"""Bearer-key check as plain ASGI middleware (no per-request task overhead, streams
untouched). A key belongs to a project; the request then sees only that project's objects
(store/projects.py). With only the default project, nothing is narrowed."""

from __future__ import annotations

from threadloom.api.error_handlers import door_for
from threadloom.store.projects import DEFAULT, current_project

# Probes and scrapers: no key (the API's description, /docs and /openapi.json, needs one).
OPEN_PATHS = frozenset({"/healthz", "/v1/health", "/ok", "/info", "/readyz", "/metrics"})


class BearerKeyMiddleware:
    def __init__(self, app, keys: dict[str, str] | None):
        self.app = app
        self.keys = dict(keys or {})
        # Only the default project: no statement needs narrowing (new rows default to it).
        self.scoped = any(project != DEFAULT for project in self.keys.values())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                text = value.decode("latin-1")
                if text.lower().startswith("bearer "):
                    key = text[7:].strip()
            elif name == b"x-api-key" and key is None:
                key = value.decode("latin-1").strip()
        project = self.keys.get(key) if key is not None else None
        if project is not None:
            if not self.scoped:
                return await self.app(scope, receive, send)
            token = current_project.set(project)
            try:
                return await self.app(scope, receive, send)
            finally:
                current_project.reset(token)
        await door_for(scope["path"]).unauthorized(key)(scope, receive, send)
