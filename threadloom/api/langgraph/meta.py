"""/ok and /info, which LangGraph's clients probe."""

from fastapi import APIRouter

from threadloom import __version__
from threadloom.api.responses import JSONResponse

router = APIRouter()


@router.get("/ok")
async def ok():
    return JSONResponse({"ok": True})


@router.get("/info")
async def info():
    return JSONResponse({
        "version": __version__,
        "server": "threadloom",
        "flags": {"assistants": True, "crons": False, "langsmith": False, "strict_resume": False},
    })
