"""The LangGraph Agent Server API door, at the root beside /v1."""

from fastapi import APIRouter

from threadloom.api.langgraph import assistants, crons, meta, runs, store, threads

router = APIRouter()
for module in (meta, assistants, crons, runs, threads, store):
    router.include_router(module.router)
