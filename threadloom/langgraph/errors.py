"""Errors of the LangGraph door, in LangGraph's statuses. The app answers every ApiError
outside /v1 with `{"detail": message}` and the error's status."""

from __future__ import annotations

from threadloom.domain.errors import ApiError


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


class BadRequest(ApiError):
    status = 400
