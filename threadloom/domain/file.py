"""The file object: purposes, the rules each purpose puts on uploads, and the wire form."""

from __future__ import annotations

import time
from pathlib import PurePath

from threadloom.domain import ids
from threadloom.domain.errors import InvalidRequest

# What a client may upload with (CreateFileRequest); `assistants_output` is what
# code_interpreter writes, never uploaded.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
# Purposes whose files file_search may index.
SEARCHABLE_PURPOSES = frozenset({"assistants", "user_data", "assistants_output"})
_JSONL_PURPOSES = {"batch": "Batch API", "fine-tune": "fine-tuning"}
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
DEFAULT_BATCH_EXPIRY = 30 * 86400


def check_upload(filename: str, purpose: str, size: int, max_bytes: int) -> None:
    if purpose not in UPLOAD_PURPOSES:
        supported = ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES)
        raise InvalidRequest(
            f"Invalid value: '{purpose}'. Supported values are: {supported}.", param="purpose", code="invalid_value"
        )
    if size == 0:
        raise InvalidRequest("File is empty.", param="file", code="empty_file")
    if size > max_bytes:
        raise FileTooLarge(
            f"File is too large ({size} bytes). The maximum file size is {max_bytes} bytes.",
            param="file",
            code="file_too_large",
        )
    suffix = PurePath(filename).suffix.lower()
    if purpose in _JSONL_PURPOSES and suffix != ".jsonl":
        raise InvalidRequest(
            f"Invalid file format for {_JSONL_PURPOSES[purpose]}. Must be .jsonl", param="file", code="invalid_file_format"
        )
    if purpose == "vision" and suffix not in _IMAGE_SUFFIXES:
        raise InvalidRequest(
            "Invalid file format for vision. Supported formats: png, jpg, jpeg, gif, webp.",
            param="file",
            code="invalid_file_format",
        )


class FileTooLarge(InvalidRequest):
    pass


def file_expiry(purpose: str, expires_after: dict | None, now: int) -> int | None:
    if expires_after is not None:
        return now + expires_after["seconds"]
    if purpose == "batch":
        return now + DEFAULT_BATCH_EXPIRY  # OpenAI's default for batch files
    return None


def new_file(filename: str, purpose: str, size: int, expires_at: int | None, now: int | None = None) -> dict:
    now = int(time.time()) if now is None else now
    body = {
        "id": ids.file_id(),
        "object": "file",
        "bytes": size,
        "created_at": now,
        "filename": filename,
        "purpose": purpose,
        # Deprecated on the wire, but the SDK's wait_for_processing polls it.
        "status": "processed",
    }
    if expires_at is not None:  # the spec types it as an integer: absent rather than null
        body["expires_at"] = expires_at
    return body
