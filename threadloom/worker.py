"""`threadloom worker`: a process that executes runs, ingestion and code for the API
replicas (`serve --no-executor`), over the shared database and Redis. No HTTP.

SIGTERM or SIGINT drains it as it drains a server: nothing new starts, running turns get
`--shutdown-grace` seconds, the rest end `failed` with their text kept, and the queued runs
reserved here go back to the others. A second signal cuts the grace short."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from threadloom.assembly import ThreadloomProcess
from threadloom.config import Settings

log = logging.getLogger("threadloom")


async def _work(settings: Settings) -> None:
    process = ThreadloomProcess(settings, executes=True, migrate=False)
    await process.start()
    log.info("worker %s is taking runs", process.owner)
    signals = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    await signals.get()
    log.info("worker %s stopping: draining", process.owner)
    try:
        await process.drain(abort=lambda: not signals.empty())
    finally:
        await process.stop()


def run_worker(settings: Settings) -> int:
    uvloop.run(_work(settings))
    return 0
