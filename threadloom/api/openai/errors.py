"""OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`, and the
status of each error on this door (api/error_handlers.py looks them up and calls these;
so do the middlewares that answer before any route)."""

from __future__ import annotations

from threadloom.api.openai.validation import param_from_loc
from threadloom.api.responses import JSONResponse
from threadloom.domain.errors import NotFound, ServiceError, Unavailable
from threadloom.domain.file import FileTooLarge
from threadloom.services.langgraph import errors as langgraph

# The status of each service error on this door, looked up along the error's class
# hierarchy. A conflict is a 400 here (OpenAI's SDK retries 409s).
STATUSES: dict[type, int] = {
    FileTooLarge: 413,
    NotFound: 404,
    langgraph.NotFound: 404,
    Unavailable: 500,
    ServiceError: 400,
}


def error_response(status: int, message: str, type_: str = "invalid_request_error", param=None, code=None, headers=None):
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def service_error(exc: ServiceError, status: int) -> JSONResponse:
    # As the hosted API types them: the server's fault, or the request's.
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return error_response(status, exc.message, type_, exc.param, exc.code)


def id_taken() -> JSONResponse:
    return error_response(400, "An object with this id already exists.", code="conflict")


def database_error(status: int, message: str) -> JSONResponse:
    if status == 503:
        return error_response(503, message, "server_error", code="database_unavailable", headers={"Retry-After": "1"})
    return error_response(status, message, "server_error")


def request_validation_error(errors: list[dict]) -> JSONResponse:
    err = errors[0]
    param = param_from_loc(tuple(p for p in err["loc"] if p not in ("body", "query", "path")))
    return error_response(400, f"Invalid '{param}': {err['msg']}.", param=param, code="invalid_value")


def http_error(method: str, path: str, status: int, detail) -> JSONResponse:
    if status == 404:
        return error_response(404, f"Invalid URL ({method} {path})")
    if status == 405:
        return error_response(405, f"Method not allowed ({method} {path})")
    return error_response(status, str(detail))


def unauthorized(key: str | None) -> JSONResponse:
    # The key is echoed masked, as the hosted API does, so a client sees which one it sent.
    shown = (key[:3] + "*" * 5 + key[-4:]) if key and len(key) > 8 else (key or "")
    message = (
        f"Incorrect API key provided: {shown}." if key else
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
    )
    return error_response(401, message, code="invalid_api_key")


def too_large(limit: int) -> JSONResponse:
    return error_response(413, f"Request too large: this server accepts request bodies of at most {limit} bytes.",
                          code="request_too_large")


def internal_error() -> JSONResponse:
    return error_response(500, "The server had an error while processing your request.", "server_error")


def unsupported_beta() -> JSONResponse:
    return error_response(400, "The v1 Assistants API is not supported; send the 'OpenAI-Beta: assistants=v2' header.",
                          code="invalid_beta")
