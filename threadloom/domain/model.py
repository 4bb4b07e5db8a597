"""Base for request bodies: unknown fields are refused, as the hosted API does."""

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
