"""Metadata limits: at most 16 pairs, keys up to 64 characters, values up to 512."""

from __future__ import annotations

from threadloom.domain.errors import InvalidRequest

MAX_PAIRS = 16
MAX_KEY = 64
MAX_VALUE = 512


def check_metadata(metadata: dict | None, param: str = "metadata") -> dict | None:
    if metadata is None:
        return None
    if len(metadata) > MAX_PAIRS:
        raise InvalidRequest(
            f"Invalid '{param}': too many properties. Expected an object with at most {MAX_PAIRS} "
            f"properties, but got an object with {len(metadata)} properties instead.",
            param=param,
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > MAX_KEY:
            raise InvalidRequest(
                f"Invalid '{param}': metadata key too long. Expected a string with maximum length "
                f"{MAX_KEY}, but got a string with length {len(key)} instead.",
                param=f"{param}.{key}",
                code="string_above_max_length",
            )
        if len(value) > MAX_VALUE:
            raise InvalidRequest(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum length "
                f"{MAX_VALUE}, but got a string with length {len(value)} instead.",
                param=f"{param}.{key}",
                code="string_above_max_length",
            )
    return metadata
