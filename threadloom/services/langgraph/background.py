"""Tasks the door starts and nobody awaits (pumps, waits, deletions): kept referenced
until they finish, since the event loop holds only weak references to tasks."""

from __future__ import annotations

import asyncio


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
