"""Executes a run: one model turn per claim. A turn either completes the run, or stops it
at `requires_action` (the outputs' submission queues it again), or ends it incomplete,
failed, cancelled or expired. It knows nothing of HTTP or of which door asked."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field


from threadloom.domain import ids
from threadloom.domain.message import new_assistant_message
from threadloom.domain.run_status import is_terminal
from threadloom.domain.run_step import function_call, new_message_step, new_tool_calls_step
from threadloom.engine.context import PromptBudgetExceeded, Unit, build_context, message_unit, tool_step_unit
from threadloom.engine.run_writer import (
    RunWriter,
    StaleRun,
    close_message,
    close_step,
    end_run_body,
    end_stored_run,
    usage_wire,
)
from threadloom.llm.base import ChatRequest, Finish, ModelError, TextDelta, ToolCallDelta, Usage
from threadloom.llm.routing import ModelRouter
from threadloom.store import runs as run_queries
from threadloom.store.objects import message_store, step_store

log = logging.getLogger("threadloom.engine")

# How long a claimed run stays this process's without renewal (the sweeper renews it
# every LEASE_SECONDS / 3). A run whose process died is failed once it lapses: keep it short.
LEASE_SECONDS = 6
DEFAULT_COMPLETION_RESERVE = 1024

def _read_history(conn, thread_id: str) -> list[Unit]:
    """The thread as units the context builder keeps or drops whole: finished messages,
    and tool-call steps whose outputs are all in."""
    messages, steps = run_queries.thread_history(conn, thread_id)
    units = [message_unit(o, b) for o, b in messages if b["status"] != "in_progress"]
    for ordinal, body in steps:
        if body["type"] == "tool_calls":
            unit = tool_step_unit(ordinal, body)
            if unit is not None:
                units.append(unit)
    return units


@dataclass
class _Call:
    id: str
    name: str = ""
    arguments: str = ""


@dataclass
class Turn:
    run: dict
    state: dict
    message: dict | None = None
    message_step: dict | None = None
    message_closed: bool = False
    text: list[str] = field(default_factory=list)
    tool_step: dict | None = None
    calls: dict[int, _Call] = field(default_factory=dict)
    usage: Usage | None = None
    finish: str | None = None
    prompt_estimate: int = 0
    count: object = None
    history: list[Unit] = field(default_factory=list)


class CancelRequested(Exception):
    pass


class RunExecutor:
    def __init__(self, writer: RunWriter, router: ModelRouter, owner: str):
        self.writer = writer
        self.router = router
        self.owner = owner

    async def execute(self, run_id: str, cancel: asyncio.Event) -> None:
        claimed = await self._claim(run_id)
        if claimed is None:
            return
        run, state, history = claimed
        turn = Turn(run, state, history=history)
        deadline = turn.run["expires_at"]
        try:
            remaining = deadline - time.time() if deadline else None
            async with asyncio.timeout(remaining):
                await self._turn(turn, cancel)
        except CancelRequested:
            await self._settle_stale(turn)
        except asyncio.CancelledError:
            # The dispatcher interrupts a turn that waits on the model when a cancel arrives.
            if not cancel.is_set():
                raise
            asyncio.current_task().uncancel()
            await self._settle_stale(turn)
        except TimeoutError:
            await self._end(turn, "expired")
        except ModelError as exc:
            await self._end(turn, "failed", last_error={"code": exc.code, "message": exc.message})
        except PromptBudgetExceeded:
            await self._end(turn, "incomplete", incomplete_reason="max_prompt_tokens")
        except StaleRun:
            await self._settle_stale(turn)
        except Exception as exc:  # a bug must not leave a run in_progress forever
            log.exception("run %s failed", run_id)
            await self._end(turn, "failed", last_error={"code": "server_error", "message": f"internal error: {exc.__class__.__name__}"})

    # -- claim ---------------------------------------------------------------

    async def _claim(self, run_id: str) -> tuple[dict, dict, list[Unit]] | None:
        """queued -> in_progress, with this process as the run's owner: read and update in one
        transaction, so of two executors only one gets the run. The thread's history is
        read in the same transaction."""
        now = int(time.time())

        def claim(conn):
            row = run_queries.run_with_state(conn, run_id, lock=True)
            if row is None or row[0]["status"] != "queued":
                return None
            run, state = row
            if run["expires_at"] and now >= run["expires_at"]:
                return "expired"
            started = dict(run, status="in_progress", started_at=now)
            run_queries.start_run(conn, run_id, started, self.owner, now + LEASE_SECONDS)
            return started, state, _read_history(conn, run["thread_id"])

        claimed = await self.writer.db.transact(claim, durable=False)
        if claimed == "expired":
            await end_stored_run(self.writer, run_id, "queued", "expired")
            return None
        if claimed is not None:
            self.writer.bus.publish(run_id, "thread.run.in_progress", claimed[0])
        return claimed

    # -- one model turn ------------------------------------------------------

    async def _turn(self, turn: Turn, cancel: asyncio.Event) -> None:
        run, state = turn.run, turn.state
        try:
            backend, model_name = self.router.resolve(run["model"])
        except LookupError as exc:
            raise ModelError(str(exc)) from None
        turn.count = backend.count_tokens
        completion_left = None
        if run["max_completion_tokens"] is not None:
            completion_left = run["max_completion_tokens"] - state["completion_tokens"]
            if completion_left <= 0:
                await self._end(turn, "incomplete", incomplete_reason="max_completion_tokens")
                return
        request = await self._request(turn, backend, model_name, completion_left)
        stream = backend.stream_chat(request)
        try:
            async for chunk in stream:
                if cancel.is_set():
                    raise CancelRequested()
                if type(chunk) is TextDelta:
                    await self._on_text(turn, chunk.text)
                elif type(chunk) is ToolCallDelta:
                    await self._on_tool_delta(turn, chunk)
                elif type(chunk) is Usage:
                    turn.usage = chunk
                elif type(chunk) is Finish:
                    turn.finish = chunk.reason
        finally:
            await stream.aclose()
        if cancel.is_set():
            raise CancelRequested()
        await self._finish_turn(turn, completion_left)

    async def _request(self, turn: Turn, backend, model_name: str, completion_left: int | None) -> ChatRequest:
        run, state = turn.run, turn.state
        units = turn.history
        function_tools = [t for t in run["tools"] if t["type"] == "function"]
        window_budget = None
        if backend.context_window:
            reserve = min(completion_left or DEFAULT_COMPLETION_RESERVE, backend.context_window // 4)
            window_budget = backend.context_window - reserve
        prompt_budget = None
        if run["max_prompt_tokens"] is not None:
            prompt_budget = run["max_prompt_tokens"] - state["prompt_tokens"]
        built = build_context(
            instructions=run["instructions"],
            units=units,
            tools=function_tools or None,
            truncation=run["truncation_strategy"],
            count=backend.count_tokens,
            window_budget=window_budget,
            prompt_budget=prompt_budget,
        )
        turn.prompt_estimate = built.prompt_tokens
        tool_choice = run["tool_choice"]
        if isinstance(tool_choice, dict) and tool_choice.get("type") != "function":
            tool_choice = "auto"  # built-in tools are not executed by this server yet
        response_format = run["response_format"]
        return ChatRequest(
            model=model_name,
            messages=built.messages,
            tools=function_tools or None,
            tool_choice=tool_choice if function_tools else None,
            parallel_tool_calls=run["parallel_tool_calls"] if function_tools else None,
            response_format=None if response_format == "auto" else response_format,
            temperature=run["temperature"],
            top_p=run["top_p"],
            max_tokens=completion_left,
            reasoning_effort=state.get("reasoning_effort"),
        )

    # -- streaming into messages and steps ------------------------------------

    async def _on_text(self, turn: Turn, text: str) -> None:
        if turn.tool_step is not None:
            return  # text after a tool call in the same turn has no place in the Assistants model
        if turn.message is None:
            await self._open_message(turn)
        turn.text.append(text)
        message_id = turn.message["id"]
        self.writer.bus.publish(turn.run["id"], "thread.message.delta", {
            "id": message_id,
            "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": {"value": text}}]},
        })

    async def _open_message(self, turn: Turn) -> None:
        run = turn.run
        now = int(time.time())
        message = new_assistant_message(run["thread_id"], run["assistant_id"], run["id"], now)
        step = new_message_step(run, message["id"], now)
        ordinal = time.time_ns()
        await self.writer.commit(
            run, None, durable=False,
            inserts=[
                (step_store, step, {"run_id": run["id"], "thread_id": run["thread_id"], "ordinal": ordinal}),
                (message_store, message, {"thread_id": run["thread_id"], "run_id": run["id"], "ordinal": ordinal}),
            ],
            events=[
                ("thread.run.step.created", step),
                ("thread.run.step.in_progress", step),
                ("thread.message.created", message),
                ("thread.message.in_progress", message),
            ],
        )
        turn.message, turn.message_step = message, step

    async def _close_message_now(self, turn: Turn) -> None:
        """Text came before a tool call: finish that message before the tool step opens
        (streams carry one message or step at a time)."""
        now = int(time.time())
        text = "".join(turn.text)
        message = close_message(turn.message, text, "completed", now)
        usage = usage_wire(0, turn.count(text))
        step = close_step(turn.message_step, "completed", now, usage=usage)
        await self.writer.commit(
            turn.run, None,
            puts=[(message_store, message), (step_store, step)],
            events=[("thread.message.completed", message), ("thread.run.step.completed", step)],
        )
        turn.message, turn.message_step, turn.message_closed = message, step, True

    async def _on_tool_delta(self, turn: Turn, delta: ToolCallDelta) -> None:
        run = turn.run
        if turn.message is not None and not turn.message_closed:
            await self._close_message_now(turn)
        if turn.tool_step is None:
            now = int(time.time())
            step = new_tool_calls_step(run, now)
            await self.writer.commit(
                run, None, durable=False,
                inserts=[(step_store, step, {"run_id": run["id"], "thread_id": run["thread_id"], "ordinal": time.time_ns()})],
                events=[("thread.run.step.created", step), ("thread.run.step.in_progress", step)],
            )
            turn.tool_step = step
        call = turn.calls.get(delta.index)
        if call is None:
            call = turn.calls[delta.index] = _Call(ids.call_id(), delta.name or "", delta.arguments)
            entry = {"index": len(turn.calls) - 1, "id": call.id, "type": "function",
                     "function": {"name": call.name, "arguments": delta.arguments, "output": None}}
        else:
            function: dict = {}
            if delta.name and not call.name:
                # A name that comes after the call's first chunk is streamed then, once.
                call.name = function["name"] = delta.name
            call.arguments += delta.arguments
            if delta.arguments:
                function["arguments"] = delta.arguments
            if not function:
                return
            entry = {"index": list(turn.calls).index(delta.index), "type": "function", "function": function}
        self.writer.bus.publish(run["id"], "thread.run.step.delta", {
            "id": turn.tool_step["id"],
            "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [entry]}},
        })

    # -- ending a turn -------------------------------------------------------

    def _turn_usage(self, turn: Turn) -> tuple[int, int]:
        if turn.usage is not None and (turn.usage.prompt_tokens or turn.usage.completion_tokens):
            return turn.usage.prompt_tokens, turn.usage.completion_tokens
        produced = "".join(turn.text) + "".join(c.name + c.arguments for c in turn.calls.values())
        return turn.prompt_estimate, turn.count(produced)

    async def _finish_turn(self, turn: Turn, completion_left: int | None) -> None:
        prompt, completion = self._turn_usage(turn)
        state = dict(turn.state)
        state["prompt_tokens"] += prompt
        state["completion_tokens"] += completion
        state["turns"] = state.get("turns", 0) + 1
        turn.state = state
        if turn.finish == "length":
            if turn.calls:
                # A call cut off mid-arguments is not a call: never hand it to the client.
                if completion_left is not None:
                    await self._end(turn, "incomplete", incomplete_reason="max_completion_tokens")
                else:
                    await self._end(turn, "failed", last_error={
                        "code": "server_error", "message": "the model's output ended in the middle of a tool call"})
                return
            await self._end(turn, "incomplete", incomplete_reason="max_completion_tokens")
            return
        if turn.calls:
            await self._require_action(turn, prompt, completion)
            return
        await self._complete(turn, prompt, completion)

    async def _complete(self, turn: Turn, prompt: int, completion: int) -> None:
        run = turn.run
        if turn.message is None:
            await self._open_message(turn)  # the model said nothing: still one (empty) text part
        now = int(time.time())
        message = close_message(turn.message, "".join(turn.text), "completed", now)
        if turn.finish == "content_filter":
            # The model's filter cut the answer: the run completes, the message does not.
            message.update(status="incomplete", completed_at=None, incomplete_at=now,
                           incomplete_details={"reason": "content_filter"})
        step = close_step(turn.message_step, "completed", now, usage=usage_wire(prompt, completion))
        ended = end_run_body(run, turn.state, "completed", now)
        await self.writer.commit(
            ended, "in_progress", state=turn.state,
            puts=[(message_store, message), (step_store, step)],
            events=[(f"thread.message.{message['status']}", message), ("thread.run.step.completed", step), ("thread.run.completed", ended)],
            run_columns={"owner": None, "lease_until": None},
        )

    async def _require_action(self, turn: Turn, prompt: int, completion: int) -> None:
        run = turn.run
        calls = [function_call(c.id, c.name, c.arguments) for c in turn.calls.values()]
        step = dict(turn.tool_step)
        step["step_details"] = {"type": "tool_calls", "tool_calls": calls}
        text_tokens = turn.message_step["usage"]["completion_tokens"] if turn.message_closed else 0
        # Kept on the step until the outputs arrive; the step is completed then.
        step["usage"] = None
        state = dict(turn.state, pending_step_usage=usage_wire(prompt, max(completion - text_tokens, 0)))
        waiting = dict(run, status="requires_action", required_action={
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                for c in calls
            ]},
        })
        await self.writer.commit(
            waiting, "in_progress", state=state,
            puts=[(step_store, step)],
            events=[("thread.run.requires_action", waiting)],
            run_columns={"owner": None, "lease_until": None},
        )

    async def _end(self, turn: Turn, status: str, *, last_error=None, incomplete_reason=None) -> None:
        run = turn.run
        now = int(time.time())
        puts, events = self._close_open(turn, status, now, last_error)
        ended = end_run_body(run, turn.state, status, now, last_error=last_error, incomplete_reason=incomplete_reason)
        events.append((f"thread.run.{status}", ended))
        try:
            await self.writer.commit(
                ended, run["status"], state=turn.state, puts=puts, events=events,
                run_columns={"owner": None, "lease_until": None},
            )
        except StaleRun:
            await self._settle_stale(turn)

    def _close_open(self, turn: Turn, status: str, now: int, last_error) -> tuple[list, list]:
        """The final form (and events) of the message and steps this turn has open."""
        puts, events = [], []
        if turn.message is not None and not turn.message_closed:
            message = close_message(turn.message, "".join(turn.text), status, now)
            puts.append((message_store, message))
            events.append((f"thread.message.{message['status']}", message))
            usage = usage_wire(*self._turn_usage(turn)) if status == "incomplete" else None
            step = close_step(turn.message_step, status, now, usage=usage, last_error=last_error)
            puts.append((step_store, step))
            events.append((f"thread.run.step.{step['status']}", step))
        if turn.tool_step is not None:
            step = close_step(turn.tool_step, status, now, last_error=last_error)
            calls = [function_call(c.id, c.name, c.arguments) for c in turn.calls.values()]
            step["step_details"] = {"type": "tool_calls", "tool_calls": calls}
            puts.append((step_store, step))
            events.append((f"thread.run.step.{step['status']}", step))
        return puts, events

    async def _settle_stale(self, turn: Turn) -> None:
        """Someone else changed the run mid-turn: a cancel leaves it `cancelling`, which this
        executor (the one holding the turn) turns into `cancelled`. A run another process
        ended (a cancel sent to another server, a sweeper) keeps its end; this turn closes
        what it had open, with the text it streamed, and this process's streams end too."""
        loaded = await self.writer.load(turn.run["id"])
        if loaded is None:
            return  # its thread was deleted (RunService.abandon ended its streams)
        run, _ = loaded
        if run["status"] == "cancelling":
            turn.run = run
            await self._end(turn, "cancelled")
        elif is_terminal(run["status"]):
            puts, events = self._close_open(turn, run["status"], int(time.time()), run["last_error"])
            events.append((f"thread.run.{run['status']}", run))
            await self.writer.commit(run, None, puts=puts, events=events)
            self.writer.bus.end(run["id"])
