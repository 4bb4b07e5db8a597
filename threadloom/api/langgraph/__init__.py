"""The LangGraph Agent Server API door, at the root beside /v1."""

from fastapi import APIRouter

from threadloom.api.langgraph import assistants, meta, runs, threads

router = APIRouter()
for module in (meta, assistants, runs, threads):
    router.include_router(module.router)
