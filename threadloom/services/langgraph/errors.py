"""Errors of the LangGraph door, as LangGraph's server means them (api/langgraph/errors.py
gives each its status)."""

from __future__ import annotations

from threadloom.domain.errors import ServiceError


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class Unprocessable(ServiceError):
    pass


class BadRequest(ServiceError):
    pass
