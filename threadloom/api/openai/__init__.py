"""The OpenAI Assistants API v2 door, mounted under /v1."""

from fastapi import APIRouter

from threadloom.api.openai import assistants, files, messages, models, runs, threads, vector_stores

router = APIRouter(prefix="/v1")
# runs before threads: /threads/runs must not be taken for a thread id.
for module in (assistants, runs, threads, messages, models, files, vector_stores):
    router.include_router(module.router)
