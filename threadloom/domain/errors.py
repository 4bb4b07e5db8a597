"""Errors the services raise; each door maps them to its protocol's error shape."""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404

    @classmethod
    def of(cls, kind: str, object_id: str) -> "NotFound":
        return cls(f"No {kind} found with id '{object_id}'.")


class Conflict(ApiError):
    """A state conflict. The OpenAI door answers it with 400 (the SDK retries 409s),
    the LangGraph door with 409."""

    status = 400


class Unauthorized(ApiError):
    status = 401
