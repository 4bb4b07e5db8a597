"""The OpenAI Assistants API v2 door, mounted under /v1."""

from fastapi import APIRouter

from threadloom.api.openai import assistants, messages, threads

router = APIRouter(prefix="/v1")
for module in (assistants, threads, messages):
    router.include_router(module.router)
