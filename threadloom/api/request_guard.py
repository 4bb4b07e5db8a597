"""Plain-ASGI checks around every request (BaseHTTPMiddleware would cost a task per
request and wrap streaming bodies):

- `OpenAI-Beta: assistants=v1` is refused on /v1 (v1 objects have other shapes);
- outside /v1, a path holding NUL is not found (no id holds one, and PostgreSQL refuses
  it as a parameter; /v1 answers it per resource: "No thread found with id ...");
- an unhandled error becomes a 500 in the protocol's error shape *without* closing the
  keep-alive connection, as Starlette's outermost handler would.
"""

from __future__ import annotations

import logging

import orjson

log = logging.getLogger("threadloom.api")


def _openai_error(message: str, type_: str, code: str | None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


_BETA_V1 = _openai_error(
    "The v1 Assistants API is not supported; send the 'OpenAI-Beta: assistants=v2' header.",
    "invalid_request_error", "invalid_beta",
)
_OPENAI_500 = _openai_error("The server had an error while processing your request.", "server_error", None)
_PLAIN_500 = orjson.dumps({"detail": "Internal server error"})


async def _send_json(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestGuardMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        openai = path.startswith("/v1")
        if openai:
            for name, value in scope["headers"]:
                if name == b"openai-beta" and b"assistants=v1" in value:
                    return await _send_json(send, 400, _BETA_V1)
        if "\x00" in path and not openai:
            return await _send_json(send, 404, orjson.dumps({"detail": "Not Found"}))

        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], path)
            if started:
                raise  # the response is half-sent: nothing better than dropping the connection
            await _send_json(send, 500, _OPENAI_500 if openai else _PLAIN_500)
