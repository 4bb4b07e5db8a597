"""One log line and one count (threadloom_requests) per request, and its id on every response (plain ASGI: no task per request,
streams untouched).

The id is the request's own `x-request-id` when it sends a usable one, else a new one; it
comes back as `x-request-id`, which the OpenAI SDKs expose as `_request_id`. The line is
written when the response ends (for a stream, when the stream closes)."""

from __future__ import annotations

import logging
import time
import uuid

from threadloom import metrics

log = logging.getLogger("threadloom.http")
_IN_MESSAGE = ("method", "path", "status", "duration_ms")


def _request_id(scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if 0 < len(value) <= 128 and value.isascii() and value.replace(b"-", b"").replace(b"_", b"").replace(b".", b"").isalnum():
                return value
            break
    return b"req_" + uuid.uuid4().hex.encode()


def _route_template(scope) -> str:
    """The matched route with its parameters named (/v1/threads/{thread_id}), so that the
    metric's labels stay few; `unmatched` when no route took the request."""
    if "route" not in scope:
        return "unmatched"
    params = scope.get("path_params") or {}
    if not params:
        return scope["path"]
    names = {str(value): name for name, value in params.items()}
    return "/".join("{" + names[part] + "}" if part in names else part for part in scope["path"].split("/"))


class RequestLogMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = _request_id(scope)
        started = time.perf_counter()
        status = None

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.REQUESTS.labels(_route_template(scope), scope["method"], str(status or 0)).inc()
            if log.isEnabledFor(logging.INFO):
                path = scope["path"]
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                level = logging.WARNING if status is None or status >= 500 else logging.INFO
                log.log(level, "%s %s -> %s in %.1f ms", scope["method"], path, status or "no response", duration_ms, extra={
                    "fields": {"method": scope["method"], "path": path, "status": status, "duration_ms": duration_ms,
                               "request_id": request_id.decode()},
                    "in_message": _IN_MESSAGE,
                })
