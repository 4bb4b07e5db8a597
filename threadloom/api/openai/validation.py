"""How the hosted API words a request that does not validate: pydantic's failures as
InvalidRequest (its message, `param` and `code`), and the JSON type names its messages use."""

from __future__ import annotations

from pydantic import ValidationError

from threadloom.domain.errors import InvalidRequest

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
