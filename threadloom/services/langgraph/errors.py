"""Errors of the LangGraph door, as LangGraph's server means them (api/langgraph/errors.py
gives each its status)."""

from __future__ import annotations

from threadloom.domain.errors import ServiceError


# What LangGraph's server says to a config with `configurable` beside `context`.
CONFIGURABLE_AND_CONTEXT = ("Cannot specify both configurable and context. Prefer setting context alone. Context was "
                            "introduced in LangGraph 0.6.0 and is the long term planned replacement for configurable.")


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class Unprocessable(ServiceError):
    pass


class BadRequest(ServiceError):
    pass
