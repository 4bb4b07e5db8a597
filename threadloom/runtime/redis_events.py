"""The event bus over Redis Streams, for several processes: a run's events go to one
stream per run, so any API replica streams any run, wherever it executes, and a reader
resumes from any event id. Work and cancel signals travel over Redis pub/sub.

Event ids are `0-<seq+1>`: Redis numbers them itself (`XADD key 0-*`), so events that
different processes publish for one run (the replica that queued it, the worker that runs
it, the sweeper that ends an orphan) share one sequence, in the order Redis got them.

The store stays the truth. Publishing never blocks the caller: events wait in an outbox
that one task writes in order, pipelined. When Redis is unreachable, events are dropped
(logged); a reader that hears nothing for its idle time, or cannot reach Redis, reads the
run from the store and ends its stream with the run's final event, so nothing hangs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Awaitable, Callable

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from threadloom.runtime.events import RunEvent

log = logging.getLogger("threadloom.runtime")

KEY = "threadloom:run:{}"
CHANNEL = "threadloom:{}"  # cancel, ingest
# Queued runs for the workers: a list, so that each wake-up reaches one worker (BLPOP),
# not all of them. Losing one is harmless: the store is the queue, swept every second.
WORK = "threadloom:work"
MAX_WORK = 100_000
# A stream lives a day while its run is active, an hour after it ended: long enough for a
# client to rejoin a stream it lost, bounded for Redis's memory. A run of more than
# MAX_EVENTS events keeps its newest.
ACTIVE_SECONDS = 24 * 3600
KEEP_FINISHED_SECONDS = 3600
MAX_EVENTS = 100_000
RETRY_SECONDS = 0.5

FinalEvent = Callable[[str], Awaitable[tuple[str, dict] | None]]


class RedisEventBus:
    def __init__(self, url: str, final_event: FinalEvent):
        # No socket timeout: reads block on XREAD up to their own idle time.
        self._redis = redis.from_url(url, health_check_interval=30)
        self._final_event = final_event
        self._outbox: list[tuple] = []
        self._pending = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None
        self._taker: asyncio.Task | None = None
        self._down_since: float | None = None

    # -- publishing ----------------------------------------------------------------------

    def publish(self, run_id: str, name: str, data: dict | str) -> None:
        self._outbox.append(("event", run_id, name, data))
        self._pending.set()

    def end(self, run_id: str) -> None:
        self._outbox.append(("end", run_id))
        self._pending.set()

    def signal(self, channel: str, run_id: str) -> None:
        """`work`: wake one worker for a queued run; `cancel`, `ingest`: tell every process.
        It goes after the events published before it, on the same connection, so a worker
        woken for a run finds its `created` and `queued` events already there."""
        self._outbox.append(("work", run_id) if channel == "work" else ("signal", CHANNEL.format(channel), run_id))
        self._pending.set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what waits in the outbox, in order."""
        async with self._write_lock:
            batch, self._outbox = self._outbox, []
            if not batch:
                return
            pipe = self._redis.pipeline(transaction=False)
            touched: dict[str, int] = {}
            for item in batch:
                if item[0] == "event":
                    _, run_id, name, data = item
                    fields = {"e": name, "s": data} if isinstance(data, str) else {"e": name, "d": orjson.dumps(data)}
                    key = KEY.format(run_id)
                    pipe.xadd(key, fields, id="0-*", maxlen=MAX_EVENTS, approximate=True)
                    touched.setdefault(key, ACTIVE_SECONDS)
                elif item[0] == "end":
                    touched[KEY.format(item[1])] = KEEP_FINISHED_SECONDS
                elif item[0] == "work":
                    pipe.rpush(WORK, item[1])
                    pipe.ltrim(WORK, -MAX_WORK, -1)
                else:
                    pipe.publish(item[1], item[2])
            for key, seconds in touched.items():
                pipe.expire(key, seconds)
            try:
                await pipe.execute(raise_on_error=False)
                if self._down_since is not None:
                    log.warning("Redis is back after %.1f s", time.monotonic() - self._down_since)
                    self._down_since = None
            except (RedisError, OSError) as exc:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("Redis is unreachable (%s): events are not relayed until it is back; streams read the store", exc)

    # -- reading -------------------------------------------------------------------------

    async def position(self, run_id: str) -> int:
        """The seq the next event of this run will get."""
        await self.flush()
        try:
            last = await self._redis.xrevrange(KEY.format(run_id), count=1)
        except (RedisError, OSError):
            return 0
        return _seq(last[0][0]) + 1 if last else 0

    async def has(self, run_id: str) -> bool:
        await self.flush()
        try:
            return bool(await self._redis.exists(KEY.format(run_id)))
        except (RedisError, OSError):
            return False

    async def read_batches(self, run_id: str, start: int = 0, idle: float | None = None) -> AsyncIterator[list[RunEvent]]:
        """Events from seq `start` on, as they come; an empty list after `idle` quiet
        seconds. When the run has ended in the store but its final event does not come
        (Redis lost it, or its publisher died first), that event is made from the store."""
        key = KEY.format(run_id)
        wait = idle if idle is not None else 15.0
        after = start
        while True:
            try:
                reply = await self._redis.xread({key: f"0-{after}"}, count=1000, block=max(1, int(wait * 1000)))
            except (RedisError, OSError):
                await asyncio.sleep(RETRY_SECONDS)
                final = await self._final_event(run_id)
                if final is not None:
                    yield [RunEvent(after, *final)]
                    return
                if idle is not None:
                    yield []
                continue
            if not reply:
                final = await self._final_event(run_id)
                if final is not None:
                    # Ended, yet quiet for `wait` seconds: its last events are not coming.
                    yield [RunEvent(after, *final)]
                    return
                yield []
                continue
            batch = []
            for event_id, fields in reply[0][1]:
                seq = _seq(event_id)
                data = orjson.loads(fields[b"d"]) if b"d" in fields else fields[b"s"].decode()
                batch.append(RunEvent(seq, fields[b"e"].decode(), data))
            after = batch[-1].seq + 1
            yield batch

    async def ping(self) -> tuple[bool, str]:
        try:
            await self._redis.ping()
            return True, "reachable"
        except (RedisError, OSError) as exc:
            return False, f"unreachable: {exc.__class__.__name__}"

    # -- signals -------------------------------------------------------------------------

    def listen(self, handlers: dict[str, Callable[[str], None]], on_reconnect: Callable[[], None],
               take: Callable[[str], None], has_room: Callable[[], bool]) -> None:
        """Call handlers[channel](run_id) for each signal, and take(run_id) for each queued run
        this process gets while it has room; `on_reconnect` after a lost subscription is back
        (signals sent meanwhile are lost: look at the store)."""
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self._listen(handlers, on_reconnect))
        self._taker = loop.create_task(self._take(take, has_room))

    async def _take(self, take: Callable[[str], None], has_room: Callable[[], bool]) -> None:
        while True:
            if not has_room():
                await asyncio.sleep(0.05)
                continue
            try:
                item = await self._redis.blpop([WORK], timeout=5)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if item is not None:
                take(item[1].decode())

    async def _listen(self, handlers: dict[str, Callable[[str], None]], on_reconnect: Callable[[], None]) -> None:
        channels = {CHANNEL.format(name): handler for name, handler in handlers.items()}
        lost = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                if lost:
                    on_reconnect()
                    lost = False
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        channels[message["channel"].decode()](message["data"].decode())
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                lost = True
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:
                log.exception("a signal handler failed")
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass

    async def aclose(self) -> None:
        for task in (self._listener, self._taker, self._task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.flush()
        await self._redis.aclose()


def _seq(event_id: bytes) -> int:
    return int(event_id.split(b"-")[1]) - 1
