"""Base for request bodies: unknown fields are refused and values are not coerced
(`"1"` is not a number, `true` not a temperature), as the hosted API does."""

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)
