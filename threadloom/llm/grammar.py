"""JSON Schema → GBNF grammars for constrained generation on the embedded backend.

Every grammar built here describes a *finite* language: strings, arrays, free-form
objects and nesting all have upper bounds, and whitespace is at most one space. A weak
model under a grammar cannot then wander until the token limit (an unbounded `char*`
lets a 135M model write a string forever), so a constrained answer ends, and parses.

llama-cpp-python ships a schema converter, but it leaves strings, arrays and free-form
objects unbounded; this one is small, bounded throughout, and covers what tool
parameters and response formats use in practice: type (or a list of types), enum,
const, properties/required, additionalProperties, items, min/maxItems, min/maxLength,
small integer ranges, anyOf/oneOf, allOf (merged objects) and local $ref. Keywords it
does not enforce (pattern, format, numeric bounds of wide ranges) fall back to the
bounded type they constrain.
"""

from __future__ import annotations

import json
import re

MAX_STRING_CHARS = 200  # per string value, unless the schema asks for fewer
MAX_KEY_CHARS = 40  # keys of free-form objects
MAX_ARRAY_ITEMS = 8  # unless the schema asks for fewer (or more, up to MAX_ARRAY_ITEMS_CAP)
MAX_ARRAY_ITEMS_CAP = 32
MAX_OBJECT_KEYS = 8  # entries of free-form objects
MAX_FREE_DEPTH = 3  # nesting of free-form JSON values
MAX_ENUMERATED_INTEGERS = 256  # an integer range this small becomes an exact alternation
MAX_PARALLEL_CALLS = 4

_BASE_RULES = {
    # One optional space: enough for readable JSON, too little to run away in.
    "ws": '" "?',
    # Any JSON string character except control characters; escapes as JSON allows.
    "char": r'[^"\\\x00-\x1F\x7F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "integer": '"-"? ("0" | [1-9] [0-9]{0,15})',
    "number": '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
}


class SchemaError(ValueError):
    """A schema this converter cannot turn into a grammar."""


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal (the JSON encoding of a value, quoted for GBNF)."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_literal(value) -> str:
    return gbnf_literal(json.dumps(value, ensure_ascii=False))


class GrammarBuilder:
    """Collects named GBNF rules; `schema()` adds the rules for one JSON schema."""

    def __init__(self) -> None:
        self._rules: dict[str, str] = dict(_BASE_RULES)
        self._ref_rules: dict[str, str] = {}
        self._root_schema: dict = {}

    # -- rules ---------------------------------------------------------------
    def add(self, name: str, body: str) -> str:
        """Add a rule under a fresh name derived from `name`; return that name."""
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", name).strip("-").lower() or "r"
        unique, n = base, 1
        while unique in self._rules:
            n += 1
            unique = f"{base}-{n}"
        self._rules[unique] = body
        return unique

    def render(self, root_body: str) -> str:
        rules = {"root": root_body, **self._rules}
        return "\n".join(f"{name} ::= {body}" for name, body in rules.items()) + "\n"

    # -- bounded primitives --------------------------------------------------
    def string(self, min_len: int = 0, max_len: int = MAX_STRING_CHARS) -> str:
        max_len = max(min(max_len, MAX_STRING_CHARS), min_len)
        name = f"string-{min_len}-{max_len}"
        if name not in self._rules:
            self._rules[name] = f'"\\"" char{{{min_len},{max_len}}} "\\""'
        return name

    def free_value(self, depth: int = MAX_FREE_DEPTH) -> str:
        """Any JSON value, nested at most `depth` deep, every part bounded."""
        name = f"value-d{depth}"
        if name in self._rules:
            return name
        scalars = f"{self.string()} | number | boolean | null"
        if depth <= 0:
            self._rules[name] = scalars
            return name
        self._rules[name] = f"{self.free_object(depth)} | {self.free_array(depth)} | {scalars}"
        return name

    def free_object(self, depth: int = MAX_FREE_DEPTH) -> str:
        name = f"object-d{depth}"
        if name in self._rules:
            return name
        inner = self.free_value(depth - 1)
        key = self.string(0, MAX_KEY_CHARS)
        member = f'{key} ws ":" ws {inner}'
        self._rules[name] = _delimited("{", "}", member, 0, MAX_OBJECT_KEYS)
        return name

    def free_array(self, depth: int = MAX_FREE_DEPTH) -> str:
        name = f"array-d{depth}"
        if name in self._rules:
            return name
        self._rules[name] = _delimited("[", "]", self.free_value(depth - 1), 0, MAX_ARRAY_ITEMS)
        return name

    # -- schemas -------------------------------------------------------------
    def schema(self, schema: dict | bool, name: str = "value", root: dict | None = None) -> str:
        """The rule name for values valid under `schema`."""
        if root is not None:
            self._root_schema = root
        if schema is True or schema == {}:
            return self.free_value()
        if schema is False or not isinstance(schema, dict):
            raise SchemaError(f"unsupported schema at {name}: {schema!r}")

        if "$ref" in schema:
            return self._ref(schema["$ref"])
        if "const" in schema:
            return self.add(name, _json_literal(schema["const"]))
        if "enum" in schema:
            if not schema["enum"]:
                raise SchemaError(f"empty enum at {name}")
            return self.add(name, " | ".join(_json_literal(v) for v in schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.schema(s, f"{name}-{i}") for i, s in enumerate(schema[key])]
                return self.add(name, " | ".join(options))
        if "allOf" in schema:
            return self.schema(_merge_all_of(schema, self._resolve), name)

        kind = schema.get("type")
        if isinstance(kind, list):
            options = [self.schema({**schema, "type": t}, f"{name}-{t}") for t in kind]
            return self.add(name, " | ".join(options))
        if kind is None:
            kind = _infer_type(schema)
        if kind is None:
            return self.free_value()
        if kind == "string":
            return self.string(int(schema.get("minLength", 0)), int(schema.get("maxLength", MAX_STRING_CHARS)))
        if kind == "integer":
            return self._integer(schema, name)
        if kind in ("number", "boolean", "null"):
            return kind
        if kind == "array":
            return self._array(schema, name)
        if kind == "object":
            return self._object(schema, name)
        raise SchemaError(f"unsupported type {kind!r} at {name}")

    def _integer(self, schema: dict, name: str) -> str:
        low, high = schema.get("minimum"), schema.get("maximum")
        if schema.get("exclusiveMinimum") is not None and not isinstance(schema["exclusiveMinimum"], bool):
            low = schema["exclusiveMinimum"] + 1
        if schema.get("exclusiveMaximum") is not None and not isinstance(schema["exclusiveMaximum"], bool):
            high = schema["exclusiveMaximum"] - 1
        if low is not None and high is not None and 0 <= high - low < MAX_ENUMERATED_INTEGERS:
            values = range(int(-(-low // 1)), int(high // 1) + 1)
            return self.add(name, " | ".join(f'"{v}"' for v in values))
        return "integer"

    def _array(self, schema: dict, name: str) -> str:
        if isinstance(schema.get("prefixItems"), list):
            parts = [self.schema(s, f"{name}-{i}") for i, s in enumerate(schema["prefixItems"])]
            body = ' "," ws '.join(parts)
            return self.add(name, f'"[" ws {body} ws "]"' if parts else '"[" ws "]"')
        item = self.schema(schema.get("items", True), f"{name}-item")
        lo = int(schema.get("minItems", 0))
        hi = min(int(schema.get("maxItems", MAX_ARRAY_ITEMS)), MAX_ARRAY_ITEMS_CAP)
        return self.add(name, _delimited("[", "]", item, lo, max(hi, lo)))

    def _object(self, schema: dict, name: str) -> str:
        props: dict = schema.get("properties") or {}
        if not props:
            extra = schema.get("additionalProperties", True)
            if extra is False:
                return self.add(name, '"{" ws "}"')
            value = self.free_value(MAX_FREE_DEPTH - 1) if extra is True else self.schema(extra, f"{name}-value")
            member = f'{self.string(0, MAX_KEY_CHARS)} ws ":" ws {value}'
            return self.add(name, _delimited("{", "}", member, 0, MAX_OBJECT_KEYS))
        # Declared properties only, in declared order: required ones always, optional
        # ones each at most once. (Extra keys would only give a weak model room to ramble.)
        required = set(schema.get("required", []))
        members = []
        for key, sub in props.items():
            value = self.schema(sub, f"{name}-{key}")
            members.append((key in required, f'{_json_literal(key)} ws ":" ws {value}'))
        return self.add(name, _ordered_object(members))

    def _resolve(self, ref: str) -> dict:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, not {ref!r}")
        node = self._root_schema
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError(f"unresolvable $ref {ref!r}")
            node = node[part]
        return node

    def _ref(self, ref: str) -> str:
        if ref in self._ref_rules:
            return self._ref_rules[ref]
        # Name the rule before visiting, so a recursive schema refers to itself.
        rule = self.add("ref-" + ref.rsplit("/", 1)[-1], "null")
        self._ref_rules[ref] = rule
        self._rules[rule] = self.schema(self._resolve(ref), rule + "-body")
        return rule


def _infer_type(schema: dict) -> str | None:
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if "minLength" in schema or "maxLength" in schema or "pattern" in schema:
        return "string"
    return None


def _merge_all_of(schema: dict, resolve) -> dict:
    merged: dict = {"type": "object", "properties": {}, "required": []}
    for part in schema["allOf"]:
        if "$ref" in part:
            part = resolve(part["$ref"])
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += part.get("required", [])
    merged["properties"].update(schema.get("properties", {}))
    merged["required"] += schema.get("required", [])
    return merged


def _delimited(open_: str, close: str, item: str, lo: int, hi: int) -> str:
    """`open item ("," item)* close` with between lo and hi items."""
    if hi <= 0:
        return f'"{open_}" ws "{close}"'
    rest = f'("," ws {item})'
    if lo == 0:
        body = f"({item} ws {rest}{{0,{hi - 1}}})?"
    else:
        body = f"{item} ws {rest}{{{lo - 1},{hi - 1}}}"
    return f'"{open_}" ws {body} ws "{close}"'


def _ordered_object(members: list[tuple[bool, str]]) -> str:
    """An object whose keys come in the given order; required members always present,
    optional ones present or not. Commas go between present members only, so the
    grammar is written as: the first present member, then the rest each with a comma."""

    def tail(start: int) -> str:
        parts = []
        for required, member in members[start:]:
            parts.append(f'"," ws {member}' if required else f'("," ws {member})?')
        return " ".join(parts)

    options = []
    for i, (required, member) in enumerate(members):
        options.append(f"{member} {tail(i + 1)}".strip())
        if required:
            break  # a required member cannot be skipped, so nothing later can come first
    alternatives = "(" + " | ".join(f"({o})" for o in options) + ")"
    if not any(required for required, _ in members):
        alternatives += "?"  # every member optional: the empty object too
    return f'"{{" ws {alternatives} ws "}}"'


# -- the grammars the embedded backend uses ---------------------------------------------


def json_object_grammar() -> str:
    """`response_format: json_object`: any JSON object (bounded)."""
    builder = GrammarBuilder()
    return builder.render(builder.free_object())


def json_schema_grammar(schema: dict) -> str:
    """`response_format: json_schema`: a value valid under `schema`."""
    builder = GrammarBuilder()
    return builder.render(builder.schema(schema, "schema", root=schema))


def tool_calls_grammar(tools: list[dict], max_calls: int = MAX_PARALLEL_CALLS) -> str:
    """A JSON list of 1..max_calls `{"name": N, "arguments": {...}}`, each call one of
    `tools` (chat-completions tool dicts) with arguments valid under its parameters."""
    builder = GrammarBuilder()
    calls = []
    for i, tool in enumerate(tools):
        fn = tool["function"]
        # No parameters declared: the function takes none, so its arguments are `{}`.
        params = fn.get("parameters") or {"type": "object", "additionalProperties": False}
        args = builder.schema(params, f"args-{i}", root=params)
        calls.append(
            builder.add(
                f"call-{i}",
                f'"{{" ws "\\"name\\"" ws ":" ws {_json_literal(fn["name"])} ws "," ws '
                f'"\\"arguments\\"" ws ":" ws {args} ws "}}"',
            )
        )
    call = builder.add("call", " | ".join(calls))
    return builder.render(_delimited("[", "]", call, 1, max(1, max_calls)))

