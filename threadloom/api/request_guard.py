"""Plain-ASGI checks around every request (BaseHTTPMiddleware would cost a task per
request and wrap streaming bodies):

- `OpenAI-Beta: assistants=v1` is refused on /v1 (v1 objects have other shapes);
- outside /v1, a path holding NUL is not found (no id holds one, and PostgreSQL refuses
  it as a parameter; /v1 answers it per resource: "No thread found with id ...");
- a body over the size limit is refused with 413 in the protocol's error shape, from its
  Content-Length before anything is read, or as soon as a chunked body passes the limit
  (uploads to /v1/files have their own, larger limit);
- an unhandled error becomes a 500 in the protocol's error shape *without* closing the
  keep-alive connection, as Starlette's outermost handler would.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect

from threadloom.api.error_handlers import door_for
from threadloom.api.openai import errors as openai_door

log = logging.getLogger("threadloom.api")


class BodyTooLarge(Exception):
    pass


def _limited(receive, limit: int):
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return wrapped


class RequestGuardMiddleware:
    def __init__(self, app, max_body: int = 32 * 1024 * 1024, max_upload: int = 512 * 1024 * 1024):
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        door = door_for(path)
        if door is openai_door:
            for name, value in scope["headers"]:
                if name == b"openai-beta" and b"assistants=v1" in value:
                    return await openai_door.unsupported_beta()(scope, receive, send)
        elif "\x00" in path:
            return await door.http_error(scope["method"], path, 404, "Not Found")(scope, receive, send)
        # Multipart framing around an upload is small; 1 MiB covers it.
        limit = self.max_upload + 1024 * 1024 if path == "/v1/files" else self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    return await door.too_large(limit)(scope, receive, send)
                break
        receive = _limited(receive, limit)

        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            log.info("%s %s: the client went away before its request was read", scope["method"], path)
        except BodyTooLarge:
            if started:
                raise
            await door.too_large(limit)(scope, receive, send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], path)
            if started:
                raise  # the response is half-sent: nothing better than dropping the connection
            await door.internal_error()(scope, receive, send)
