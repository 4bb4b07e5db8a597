"""Refuses `OpenAI-Beta: assistants=v1` on /v1 (v1 objects have other shapes); v2 or no
header is accepted. Plain ASGI: Starlette's BaseHTTPMiddleware costs a task per request
and wraps streaming bodies."""

from __future__ import annotations

import orjson

_BODY = orjson.dumps({"error": {
    "message": "The v1 Assistants API is not supported; send the 'OpenAI-Beta: assistants=v2' header.",
    "type": "invalid_request_error",
    "param": None,
    "code": "invalid_beta",
}})


class BetaHeaderMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1"):
            for name, value in scope["headers"]:
                if name == b"openai-beta" and b"assistants=v1" in value:
                    await send({"type": "http.response.start", "status": 400, "headers": [
                        (b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]})
                    await send({"type": "http.response.body", "body": _BODY})
                    return
        await self.app(scope, receive, send)
