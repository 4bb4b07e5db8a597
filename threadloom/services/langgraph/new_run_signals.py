"""Wake-ups for what waits on a thread's next run (the thread stream): set in this process
when a run is created on the thread. Runs made by other servers are found by polling."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from typing import Iterator


class NewRunSignals:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, thread_id: str) -> Iterator[asyncio.Event]:
        """An event set when a run is created on the thread, while the block runs."""
        event = asyncio.Event()
        self._waiting.setdefault(thread_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(thread_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[thread_id]

    def notify(self, thread_id: str) -> None:
        for event in self._waiting.get(thread_id, ()):
            event.set()
