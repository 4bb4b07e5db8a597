"""Errors the services raise. They say what went wrong, not how a protocol shows it:
each door keeps its own table of HTTP statuses by error class (api/openai/errors.py,
api/langgraph/errors.py)."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(ServiceError):
    pass


class NotFound(ServiceError):
    @classmethod
    def of(cls, kind: str, object_id: str) -> "NotFound":
        return cls(f"No {kind} found with id '{object_id}'.")


class Conflict(ServiceError):
    """A state conflict (an active run on the thread, an id already taken)."""


class Unavailable(ServiceError):
    """Something the request needs is down (the embedding endpoint)."""
