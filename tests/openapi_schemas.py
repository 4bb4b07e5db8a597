"""Validates response bodies against the schemas of the official OpenAPI document
(../shared/spec/openai-openapi.yaml), so schema drift that the SDK would silently accept
is caught."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(os.environ.get("THREADLOOM_SPEC", Path(__file__).resolve().parents[2] / "shared" / "spec" / "openai-openapi.yaml"))
SPEC_URI = "urn:openai-openapi"


def _openapi_31_to_jsonschema(node):
    """The document mixes OpenAPI 3.0's `nullable: true` into 3.1 schemas; JSON Schema
    ignores that keyword, so fold it into the type."""
    if isinstance(node, dict):
        out = {k: _openapi_31_to_jsonschema(v) for k, v in node.items()}
        if out.pop("nullable", False):
            if "type" in out:
                types = out["type"] if isinstance(out["type"], list) else [out["type"]]
                out["type"] = types + ["null"] if "null" not in types else types
                if "enum" in out and None not in out["enum"]:
                    out["enum"] = out["enum"] + [None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_openapi_31_to_jsonschema(v) for v in node]
    return node


@lru_cache(maxsize=1)
def _registry() -> tuple[Registry, dict]:
    with open(SPEC_PATH) as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    doc = _openapi_31_to_jsonschema(doc)
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource), doc


@lru_cache(maxsize=None)
def _validator(name: str) -> Draft202012Validator:
    registry, doc = _registry()
    if name not in doc["components"]["schemas"]:
        raise KeyError(f"no schema {name!r} in the OpenAPI document")
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=registry)


def assert_schema(obj, name: str):
    """Raise with every violation listed if `obj` does not match components/schemas/`name`."""
    if hasattr(obj, "model_dump"):
        raise TypeError("validate the raw JSON body, not an SDK model (SDK models fill missing fields with None)")
    errors = sorted(_validator(name).iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        details = "\n".join(f"  at {'/'.join(map(str, e.path)) or '<root>'}: {e.message[:300]}" for e in errors[:10])
        raise AssertionError(f"response does not match {name}:\n{details}")
    return obj


def schema_names() -> list[str]:
    return list(_registry()[1]["components"]["schemas"])
