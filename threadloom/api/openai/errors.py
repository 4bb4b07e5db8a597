"""OpenAI's error shape, and the translation of pydantic validation failures into it."""

from __future__ import annotations

from pydantic import ValidationError

from threadloom.api.responses import JSONResponse
from threadloom.domain.errors import InvalidRequest, NotFound, ServiceError, Unavailable
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
TYPES: dict[type, str] = {Unavailable: "server_error"}

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}


def error_response(status: int, message: str, type_: str = "invalid_request_error", param=None, code=None, headers=None):
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def by_class(table: dict[type, object], exc: Exception, default=None):
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return default


def service_error_response(exc: ServiceError) -> JSONResponse:
    return error_response(by_class(STATUSES, exc), exc.message, by_class(TYPES, exc, "invalid_request_error"),
                          exc.param, exc.code)


def json_type(value) -> str:
    """How the hosted API names a JSON value's type in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


_UNION_TAGS = {"function", "code_interpreter", "file_search", "text", "image_file", "image_url", "json_object", "json_schema", "static", "auto"}
_SCALAR_LABELS = ("str", "int", "float", "bool", "dict", "list", "none")


def _is_union_label(part) -> bool:
    """A union member label pydantic puts into a location ('str', 'list[...]', 'tagged-union[...]')."""
    return isinstance(part, str) and ("[" in part or part in _SCALAR_LABELS or part.startswith("constrained-"))


def param_from_loc(loc: tuple) -> str:
    """('tools', 0, 'function', 'function', 'name') -> 'tools[0].function.name'.

    Pydantic puts union branch labels into locations: a discriminated union's tag after
    a list index, a plain union's member type names. Users never wrote those."""
    out = ""
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        prev = parts[i - 1] if i else None
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_union_label(part):
            pass  # a union member label
        elif (isinstance(prev, int) or _is_union_label(prev)) and part in _UNION_TAGS and i + 1 < len(parts):
            pass  # a discriminated union's tag (after a list index or a union member label)
        elif part in _UNION_TAGS and i + 1 < len(parts) and parts[i + 1] == part:
            pass  # a tag naming its own payload key ({"type": "static", "static": {...}})
        else:
            out += ("." if out else "") + str(part)
        i += 1
    return out


def _branch_mismatch(err: dict) -> bool:
    """A union branch refused the value for its type alone (another branch may explain more)."""
    loc = err["loc"]
    return bool(loc) and _is_union_label(loc[-1]) and (err["type"] in _TYPE_NAMES or err["type"] == "literal_error")


def validation_error(exc: ValidationError) -> InvalidRequest:
    """The first failure, in the hosted API's wording."""
    errors = exc.errors(include_url=False)
    # Prefer a failure that is not an artefact of trying each branch of a union: for
    # `content: []` the list branch's "empty array", not the string branch's "expected a
    # string".
    real = [e for e in errors if not _branch_mismatch(e)] or errors
    err = next((e for e in real if e["type"] != "literal_error"), real[0])
    param = param_from_loc(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind == "extra_forbidden":
        return InvalidRequest(f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter")
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return InvalidRequest(
            f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, "
            f"but got a string with length {len(value)} instead.",
            param=param,
            code="string_above_max_length",
        )
    if kind == "string_too_short":
        return InvalidRequest(
            f"Invalid '{param}': string too short. Expected a string with minimum length "
            f"{ctx.get('min_length')}, but got a string with length {len(value)} instead.",
            param=param,
            code="string_below_min_length",
        )
    if kind == "too_long":
        return InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} instead.",
            param=param,
            code="array_above_max_length",
        )
    if kind == "too_short":
        return InvalidRequest(
            f"Invalid '{param}': empty array. Expected an array with minimum length "
            f"{ctx.get('min_length')}, but got an empty array instead.",
            param=param,
            code="empty_array",
        )
    if kind in ("less_than_equal", "less_than"):
        bound = _number(ctx.get("le", ctx.get("lt")))
        noun = "integer" if isinstance(value, int) else "decimal"
        return InvalidRequest(
            f"Invalid '{param}': {noun} above maximum value. Expected a value <= {bound}, but got {value} instead.",
            param=param,
            code=f"{noun}_above_max_value",
        )
    if kind in ("greater_than_equal", "greater_than"):
        bound = _number(ctx.get("ge", ctx.get("gt")))
        noun = "integer" if isinstance(value, int) else "decimal"
        return InvalidRequest(
            f"Invalid '{param}': {noun} below minimum value. Expected a value >= {bound}, but got {value} instead.",
            param=param,
            code=f"{noun}_below_min_value",
        )
    if kind == "string_pattern_mismatch":
        return InvalidRequest(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the "
            f"pattern '{ctx.get('pattern')}'.",
            param=param,
            code="invalid_value",
        )
    if kind == "union_tag_invalid":
        tag = ctx.get("discriminator", "type").strip("'")
        param = f"{param}.{tag}" if param else tag
        return InvalidRequest(
            f"Invalid value: '{ctx.get('tag')}'. Supported values are: {ctx.get('expected_tags')}.",
            param=param,
            code="invalid_value",
        )
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected") or ctx.get("expected_tags") or ""
        return InvalidRequest(
            f"Invalid value: '{value if not isinstance(value, dict) else value.get(ctx.get('discriminator', 'type').strip(chr(39)))}'. "
            f"Supported values are: {expected}.",
            param=param,
            code="invalid_value",
        )
    if kind == "union_tag_not_found":
        tag = ctx.get("discriminator", "type").strip("'")
        param = f"{param}.{tag}" if param else tag
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind in _TYPE_NAMES:
        return InvalidRequest(
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, but got {json_type(value)} instead.",
            param=param,
            code="invalid_type",
        )
    return InvalidRequest(f"Invalid '{param}': {err['msg']}.", param=param, code="invalid_value")


# -- the door's answers to errors raised below it (api/error_handlers.py calls these) ------


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
