"""JSON responses serialised with orjson (several times faster than the stdlib on run objects)."""

from __future__ import annotations

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content)
