"""Executes a run: one model turn per claim. A turn either completes the run, or stops it
at `requires_action` (the outputs' submission queues it again), or ends it incomplete,
failed, cancelled or expired. It knows nothing of HTTP or of which door asked."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field

import orjson


from threadloom import metrics
from threadloom.domain import ids
from threadloom.domain.message import new_assistant_message, text_part
from threadloom.domain.run_status import is_terminal
from threadloom.domain.run_step import function_call, new_message_step, new_tool_calls_step
from threadloom.engine import code_interpreter, file_search
from threadloom.engine.context import PromptBudgetExceeded, Unit, build_context, message_unit, tool_step_unit
from threadloom.engine.run_writer import (
    RunWriter,
    StaleRun,
    close_message,
    close_step,
    close_stored_parts,
    end_run_body,
    end_stored_run,
    log_run_state,
    usage_wire,
)
from threadloom.llm.base import ChatRequest, Finish, ModelError, TextDelta, ToolCallDelta, Usage
from threadloom.llm.routing import ModelRouter
from threadloom.store import runs as run_queries
from threadloom.store.objects import message_store, step_store, thread_store
from threadloom.store.projects import current_project

log = logging.getLogger("threadloom.engine")


def orjson_dumps(value) -> str:
    return orjson.dumps(value).decode()

# How long a claimed run stays this process's without renewal (the sweeper renews it
# every LEASE_SECONDS / 3). A run whose process died is failed once it lapses: keep it short.
LEASE_SECONDS = 6
DEFAULT_COMPLETION_RESERVE = 1024
# Streamed text reaches the store at least this often (and at every end), so what a
# client was shown survives a crash, within this bound.
TEXT_FLUSH_SECONDS = 1.0
# Histories longer than this (in characters) are tokenized in a thread.
INLINE_CONTEXT_CHARS = 50_000
SHUTDOWN_ERROR = {"code": "server_error", "message": "The server shut down before the run finished."}
# Model turns one claim may take while built-in tools run between them (a model that
# searches again and again must still end).
MAX_BUILTIN_ROUNDS = 8

def _read_history(conn, thread_id: str, search_numbers: dict) -> list[Unit]:
    """The thread as units the context builder keeps or drops whole: finished messages,
    and tool-call steps whose outputs are all in."""
    messages, steps = run_queries.thread_history(conn, thread_id)
    units = [message_unit(o, b) for o, b in messages if b["status"] != "in_progress"]
    for ordinal, body in steps:
        if body["type"] == "tool_calls":
            unit = tool_step_unit(ordinal, body, search_numbers)
            if unit is not None:
                units.append(unit)
    return units


@dataclass
class _Call:
    id: str
    name: str = ""
    arguments: str = ""
    kind: str = "function"  # or "file_search" / "code_interpreter": built-in tools the server runs
    entry: dict | None = None  # a built-in call's step entry, once it has run


def _unit_text(unit: Unit) -> str:
    return "".join(m["content"] if isinstance(m.get("content"), str) else "" for m in unit.messages)


def _code_file_ids(run: dict, thread: dict | None) -> list[str]:
    """The files a run's code sessions see in /mnt/data: its own and its thread's."""
    ids = list(((run.get("tool_resources") or {}).get("code_interpreter") or {}).get("file_ids") or [])
    if thread is not None:
        ids += ((thread.get("tool_resources") or {}).get("code_interpreter") or {}).get("file_ids") or []
    return list(dict.fromkeys(ids))


def _store_ids(run: dict, thread: dict | None) -> list[str]:
    """The vector stores a run searches: its own (the assistant's, or create_thread_and_run's)
    and its thread's."""
    ids = list(((run.get("tool_resources") or {}).get("file_search") or {}).get("vector_store_ids") or [])
    if thread is not None:
        ids += ((thread.get("tool_resources") or {}).get("file_search") or {}).get("vector_store_ids") or []
    return list(dict.fromkeys(ids))


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
    stores: list[str] = field(default_factory=list)
    code_files: list[str] = field(default_factory=list)
    search_offered: bool = False
    code_offered: bool = False
    running_code: bool = False
    flushed_at: float = 0.0


class CancelRequested(Exception):
    pass


class RunExecutor:
    def __init__(self, writer: RunWriter, router: ModelRouter, owner: str, searcher=None, code=None):
        self.writer = writer
        self.router = router
        self.owner = owner
        self.file_search = file_search.FileSearchTool(searcher) if searcher is not None else None
        self.code_interpreter = code  # a CodeInterpreterTool, or None where no sandbox can run
        self.stopping = False  # the server is shutting down: an interrupted turn ends its run

    async def execute(self, run_id: str, cancel: asyncio.Event) -> None:
        claimed = await self._claim(run_id)
        if claimed is None:
            return
        run, state, history, stores, code_files = claimed
        if state.get("project") and current_project.get() is None:
            # Handed over by the sweeper or the bus, not by the request: what the run writes
            # (code_interpreter's files) belongs to its project.
            current_project.set(state["project"])
        turn = Turn(run, state, history=history, stores=stores, code_files=code_files)
        if self.code_interpreter is None and any(t["type"] == "code_interpreter" for t in run["tools"]):
            # Accepted by an API replica, taken by a worker that cannot sandbox code: say so
            # rather than run without the tool.
            await self._end(turn, "failed", last_error={
                "code": "server_error", "message": "code_interpreter is not available on the worker that took this run "
                "(it has no sandbox: see its log at start)"})
            return
        deadline = turn.run["expires_at"]
        try:
            remaining = deadline - time.time() if deadline else None
            async with asyncio.timeout(remaining):
                for _ in range(MAX_BUILTIN_ROUNDS):
                    if not await self._turn(turn, cancel):
                        break
                    turn = await self._next_turn(turn)
                else:
                    await self._end(turn, "failed", last_error={
                        "code": "server_error",
                        "message": f"the model kept calling built-in tools for {MAX_BUILTIN_ROUNDS} turns without answering"})
        except CancelRequested:
            await self._settle_stale(turn)
        except asyncio.CancelledError:
            # The dispatcher interrupts a turn that waits on the model when a cancel arrives,
            # or when the server shuts down.
            if not cancel.is_set() and not self.stopping:
                raise
            asyncio.current_task().uncancel()
            if turn.running_code:
                await self.code_interpreter.interrupt(turn.run["thread_id"])
            if cancel.is_set():
                await self._settle_stale(turn)
            else:
                await self._end(turn, "failed", last_error=SHUTDOWN_ERROR)
        except TimeoutError:
            if turn.running_code:
                await self.code_interpreter.interrupt(turn.run["thread_id"])
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

    async def _next_turn(self, turn: Turn) -> Turn:
        """The next model turn of the same claim: built-in tools ran, the model goes on with
        their results in its history."""
        numbers = turn.state.get("search_numbers", {})
        history = await self.writer.db.query(lambda conn: _read_history(conn, turn.run["thread_id"], numbers))
        return Turn(turn.run, turn.state, history=history, stores=turn.stores, code_files=turn.code_files)

    async def _claim(self, run_id: str) -> tuple[dict, dict, list[Unit], list[str], list[str]] | None:
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
            if not run_queries.start_run(conn, run_id, started, self.owner, now, now + LEASE_SECONDS):
                return None  # reserved for another process that is alive
            history = _read_history(conn, run["thread_id"], state.get("search_numbers", {}))
            thread = thread_store.find(conn, run["thread_id"])
            return started, state, history, _store_ids(run, thread), _code_file_ids(run, thread)

        claimed = await self.writer.db.transact(claim, durable=False)
        if claimed == "expired":
            await end_stored_run(self.writer, run_id, "queued", "expired")
            return None
        if claimed is not None:
            log_run_state(claimed[0])
            self.writer.bus.publish(run_id, "thread.run.in_progress", claimed[0])
        return claimed

    # -- one model turn ------------------------------------------------------

    async def _turn(self, turn: Turn, cancel: asyncio.Event) -> bool:
        """One model turn; True when built-in tools ran and the model is to go on."""
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
                return False
        if self._searches_for_model(turn, backend):
            await self._search_for_model(turn)
            return True
        request = await self._request(turn, backend, model_name, completion_left)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("model call for run %s", run["id"], extra={"fields": {
                "run": run["id"], "backend": type(backend).__name__, "model": request.model,
                "messages": len(request.messages), "tools": len(request.tools or ()), "tool_choice": request.tool_choice,
                "max_tokens": request.max_tokens,
            }, "in_message": ("run",)})
        stream = backend.stream_chat(request)
        asked = time.perf_counter()
        try:
            async for chunk in stream:
                if cancel.is_set():
                    raise CancelRequested()
                if asked and type(chunk) in (TextDelta, ToolCallDelta):
                    metrics.FIRST_TOKEN_SECONDS.observe(time.perf_counter() - asked)
                    asked = 0.0
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
        return await self._finish_turn(turn, completion_left)

    async def _request(self, turn: Turn, backend, model_name: str, completion_left: int | None) -> ChatRequest:
        run, state = turn.run, turn.state
        units = turn.history
        function_tools = [t for t in run["tools"] if t["type"] == "function"]
        tool_choice = self._tool_choice(run, state)
        search = file_search.settings_of(run["tools"])
        turn.search_offered = (
            self.file_search is not None and search is not None and bool(turn.stores)
            and getattr(backend, "calls_tools", True) and tool_choice != "none"
        )
        if turn.search_offered:
            function_tools = [*function_tools, file_search.DEFINITION]
        turn.code_offered = (
            self.code_interpreter is not None and tool_choice != "none"
            and any(t["type"] == "code_interpreter" for t in run["tools"])
        )
        if turn.code_offered:
            function_tools = [*function_tools, code_interpreter.DEFINITION]
        window_budget = None
        if backend.context_window:
            reserve = min(completion_left or DEFAULT_COMPLETION_RESERVE, backend.context_window // 4)
            window_budget = backend.context_window - reserve
        prompt_budget = None
        if run["max_prompt_tokens"] is not None:
            prompt_budget = run["max_prompt_tokens"] - state["prompt_tokens"]
        build = functools.partial(
            build_context,
            instructions=run["instructions"],
            units=units,
            tools=function_tools or None,
            truncation=run["truncation_strategy"],
            count=backend.count_tokens,
            window_budget=window_budget,
            prompt_budget=prompt_budget,
        )
        # Tokenizing a long history takes a while: not on the event loop.
        long = sum(len(_unit_text(u)) for u in units) > INLINE_CONTEXT_CHARS
        built = await asyncio.to_thread(build) if long else build()
        turn.prompt_estimate = built.prompt_tokens
        if isinstance(tool_choice, dict) and tool_choice["type"] == "file_search":
            tool_choice = {"type": "function", "function": {"name": file_search.NAME}} if turn.search_offered else "auto"
        elif isinstance(tool_choice, dict) and tool_choice["type"] == "code_interpreter":
            tool_choice = {"type": "function", "function": {"name": code_interpreter.NAME}} if turn.code_offered else "auto"
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

    @staticmethod
    def _tool_choice(run: dict, state: dict):
        """A forced choice (`required`, a named tool) holds until the run has made such a
        call; then `auto`, or the model would be forced to call again after every output
        and the run would never finish (OpenAI's agent tooling resets it the same way)."""
        choice = run["tool_choice"]
        if state.get("tool_calls", 0) and (choice == "required" or isinstance(choice, dict)):
            return "auto"
        return choice

    # -- file_search run by the server ----------------------------------------

    def _searches_for_model(self, turn: Turn, backend) -> bool:
        """A model that cannot call tools well (the small embedded ones) is not offered the
        search: the server searches with the user's latest message before its first turn."""
        return (
            self.file_search is not None
            and not getattr(backend, "calls_tools", True)
            and bool(turn.stores)
            and file_search.settings_of(turn.run["tools"]) is not None
            and turn.run["tool_choice"] != "none"
            and not turn.state.get("searches", 0)
        )

    async def _search_for_model(self, turn: Turn) -> None:
        run = turn.run
        user = [u for u in turn.history if u.is_message and u.messages[0]["role"] == "user"]
        query = ""
        if user:
            content = user[-1].messages[0]["content"]
            query = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
        call = _Call(ids.call_id(), file_search.NAME, orjson_dumps({"query": query}), kind="file_search")
        turn.calls[0] = call
        await self._open_tool_step(turn)
        self._publish_call_start(turn, call, 0)
        await self._run_searches(turn)
        await self._complete_tool_step(turn, 0, 0)

    async def _run_searches(self, turn: Turn) -> None:
        settings = file_search.settings_of(turn.run["tools"]) or {}
        state = turn.state = dict(turn.state)
        numbers = dict(state.get("search_numbers", {}))
        cited = dict(state.get("citations", {}))
        for call in turn.calls.values():
            if call.kind != "file_search" or call.entry is not None:
                continue
            number = state.get("searches", 0)
            state["searches"] = number + 1
            results, error = await self.file_search.search(file_search.query_of(call.arguments), turn.stores, settings)
            if error:
                log.warning("file_search in run %s: %s", turn.run["id"], error)
            numbers[call.id] = number
            for i, result in enumerate(results):
                cited[f"{number}:{i}"] = result["file_id"]
            call.entry = file_search.tool_call(call.id, results, settings)
        state["search_numbers"], state["citations"] = numbers, cited

    async def _run_code(self, turn: Turn) -> None:
        """Each code call of the turn, in its thread's sandboxed session; the step shows the
        input, then the outputs, as they become known."""
        state = turn.state = dict(turn.state)
        written = dict(state.get("written_files", {}))
        images = list(state.get("images", []))
        for index, call in enumerate(turn.calls.values()):
            if call.kind != "code_interpreter" or call.entry is not None:
                continue
            code = code_interpreter.code_of(call.arguments)
            self._publish_step_delta(turn, {"index": index, "type": "code_interpreter", "code_interpreter": {"input": code}})
            turn.running_code = True
            try:
                call.entry, new_files, new_images = await self.code_interpreter.run(
                    turn.run["thread_id"], call.id, code, turn.code_files)
            finally:
                turn.running_code = False
            outputs = [dict(o, index=i) for i, o in enumerate(call.entry["code_interpreter"]["outputs"])]
            if outputs:
                self._publish_step_delta(turn, {"index": index, "type": "code_interpreter", "code_interpreter": {"outputs": outputs}})
            written.update(new_files)
            images += new_images
        state["written_files"], state["images"] = written, images

    def _publish_step_delta(self, turn: Turn, entry: dict) -> None:
        self.writer.bus.publish(turn.run["id"], "thread.run.step.delta", {
            "id": turn.tool_step["id"],
            "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [entry]}},
        })

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
        if time.monotonic() - turn.flushed_at >= TEXT_FLUSH_SECONDS:
            turn.flushed_at = time.monotonic()
            partial = dict(turn.message, content=[text_part("".join(turn.text))])
            await self.writer.commit(turn.run, None, durable=False, puts=[(message_store, partial)])

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
        turn.flushed_at = time.monotonic()

    async def _close_message_now(self, turn: Turn) -> None:
        """Text came before a tool call: finish that message before the tool step opens
        (streams carry one message or step at a time)."""
        now = int(time.time())
        text = "".join(turn.text)
        message = self._annotate(turn, close_message(turn.message, text, "completed", now))
        usage = usage_wire(0, turn.count(text))
        step = close_step(turn.message_step, "completed", now, usage=usage)
        await self.writer.commit(
            turn.run, None,
            puts=[(message_store, message), (step_store, step)],
            events=[*self._final_message_events(message), ("thread.run.step.completed", step)],
        )
        turn.message, turn.message_step, turn.message_closed = message, step, True

    async def _on_tool_delta(self, turn: Turn, delta: ToolCallDelta) -> None:
        run = turn.run
        if turn.message is not None and not turn.message_closed:
            await self._close_message_now(turn)
        if turn.tool_step is None:
            await self._open_tool_step(turn)
        call = turn.calls.get(delta.index)
        if call is None:
            kind = "function"
            if turn.search_offered and delta.name == file_search.NAME:
                kind = "file_search"
            elif turn.code_offered and delta.name == code_interpreter.NAME:
                kind = "code_interpreter"
            call = turn.calls[delta.index] = _Call(ids.call_id(), delta.name or "", delta.arguments, kind=kind)
            self._publish_call_start(turn, call, len(turn.calls) - 1)
            return
        if call.kind != "function":
            call.arguments += delta.arguments  # a built-in call's arguments are the server's to read
            return
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

    async def _open_tool_step(self, turn: Turn) -> None:
        run = turn.run
        step = new_tool_calls_step(run, int(time.time()))
        await self.writer.commit(
            run, None, durable=False,
            inserts=[(step_store, step, {"run_id": run["id"], "thread_id": run["thread_id"], "ordinal": time.time_ns()})],
            events=[("thread.run.step.created", step), ("thread.run.step.in_progress", step)],
        )
        turn.tool_step = step

    def _publish_call_start(self, turn: Turn, call: _Call, index: int) -> None:
        if call.kind == "file_search":
            entry = {"index": index, "id": call.id, "type": "file_search", "file_search": {}}
        elif call.kind == "code_interpreter":
            entry = {"index": index, "id": call.id, "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}
        else:
            entry = {"index": index, "id": call.id, "type": "function",
                     "function": {"name": call.name, "arguments": call.arguments, "output": None}}
        self.writer.bus.publish(turn.run["id"], "thread.run.step.delta", {
            "id": turn.tool_step["id"],
            "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [entry]}},
        })

    def _step_calls(self, turn: Turn) -> list[dict]:
        """The tool calls of the turn's step as the step carries them."""
        out = []
        for call in turn.calls.values():
            if call.kind == "file_search":
                out.append(call.entry or file_search.tool_call(call.id, [], file_search.settings_of(turn.run["tools"]) or {}))
            elif call.kind == "code_interpreter":
                out.append(call.entry or code_interpreter.tool_call(call.id, code_interpreter.code_of(call.arguments), []))
            else:
                out.append(function_call(call.id, call.name, call.arguments))
        return out

    async def _complete_tool_step(self, turn: Turn, prompt: int, completion: int) -> None:
        """Every call of the step was a built-in tool and has run: the step is done and the
        run stays in progress for the model's next turn."""
        step = close_step(dict(turn.tool_step), "completed", int(time.time()), usage=usage_wire(prompt, completion))
        step["step_details"] = {"type": "tool_calls", "tool_calls": self._step_calls(turn)}
        state = dict(turn.state, tool_calls=turn.state.get("tool_calls", 0) + 1)
        turn.state = state
        await self.writer.commit(
            turn.run, "in_progress", state=state,
            puts=[(step_store, step)],
            events=[("thread.run.step.completed", step)],
        )
        turn.tool_step = step

    # -- ending a turn -------------------------------------------------------

    def _turn_usage(self, turn: Turn) -> tuple[int, int]:
        if turn.usage is not None and (turn.usage.prompt_tokens or turn.usage.completion_tokens):
            return turn.usage.prompt_tokens, turn.usage.completion_tokens
        produced = "".join(turn.text) + "".join(c.name + c.arguments for c in turn.calls.values())
        return turn.prompt_estimate, turn.count(produced)

    async def _finish_turn(self, turn: Turn, completion_left: int | None) -> bool:
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
                return False
            await self._end(turn, "incomplete", incomplete_reason="max_completion_tokens")
            return False
        if turn.calls:
            if any(c.kind == "file_search" for c in turn.calls.values()):
                await self._run_searches(turn)
            if any(c.kind == "code_interpreter" for c in turn.calls.values()):
                await self._run_code(turn)
            if any(c.kind == "function" for c in turn.calls.values()):
                await self._require_action(turn, prompt, completion)
                return False
            text_tokens = turn.message_step["usage"]["completion_tokens"] if turn.message_closed else 0
            await self._complete_tool_step(turn, prompt, max(completion - text_tokens, 0))
            return True
        await self._complete(turn, prompt, completion)
        return False

    async def _complete(self, turn: Turn, prompt: int, completion: int) -> None:
        run = turn.run
        if turn.message is None:
            await self._open_message(turn)  # the model said nothing: still one (empty) text part
        now = int(time.time())
        message = self._annotate(turn, close_message(turn.message, "".join(turn.text), "completed", now))
        if turn.finish == "content_filter":
            # The model's filter cut the answer: the run completes, the message does not.
            message.update(status="incomplete", completed_at=None, incomplete_at=now,
                           incomplete_details={"reason": "content_filter"})
        step = close_step(turn.message_step, "completed", now, usage=usage_wire(prompt, completion))
        ended = end_run_body(run, turn.state, "completed", now)
        await self.writer.commit(
            ended, "in_progress", state=turn.state,
            puts=[(message_store, message), (step_store, step)],
            events=[*self._final_message_events(message), ("thread.run.step.completed", step), ("thread.run.completed", ended)],
            run_columns={"owner": None, "lease_until": None},
        )

    async def _require_action(self, turn: Turn, prompt: int, completion: int) -> None:
        run = turn.run
        step = dict(turn.tool_step)
        step["step_details"] = {"type": "tool_calls", "tool_calls": self._step_calls(turn)}
        calls = [c for c in step["step_details"]["tool_calls"] if c["type"] == "function"]
        text_tokens = turn.message_step["usage"]["completion_tokens"] if turn.message_closed else 0
        # Kept on the step until the outputs arrive; the step is completed then.
        step["usage"] = None
        state = dict(turn.state, pending_step_usage=usage_wire(prompt, max(completion - text_tokens, 0)),
                     tool_calls=turn.state.get("tool_calls", 0) + 1)
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
        # What this turn does not know of is closed too: a cancel can interrupt the turn
        # between a message's insert and the turn taking note of it.
        known = {body["id"] for _, body in puts}
        more_puts, more_events = await close_stored_parts(self.writer, run["id"], status, now, last_error, skip=known)
        puts, events = puts + more_puts, more_events + events
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
            message = self._annotate(turn, close_message(turn.message, "".join(turn.text), status, now))
            puts.append((message_store, message))
            events.extend(self._final_message_events(message))
            usage = usage_wire(*self._turn_usage(turn)) if status == "incomplete" else None
            step = close_step(turn.message_step, status, now, usage=usage, last_error=last_error)
            puts.append((step_store, step))
            events.append((f"thread.run.step.{step['status']}", step))
        if turn.tool_step is not None and turn.tool_step["status"] == "in_progress":
            step = close_step(turn.tool_step, status, now, last_error=last_error)
            step["step_details"] = {"type": "tool_calls", "tool_calls": self._step_calls(turn)}
            puts.append((step_store, step))
            events.append((f"thread.run.step.{step['status']}", step))
        return puts, events

    def _annotate(self, turn: Turn, message: dict) -> dict:
        """The message with citations of this run's search results and paths of the files
        its code wrote in its text, and the images its code showed as image_file parts."""
        cited = turn.state.get("citations") or {}
        written = turn.state.get("written_files") or {}
        images = turn.state.get("images") or []
        if not message["content"] or not (cited or written or images):
            return message
        part = message["content"][0]
        value = part["text"]["value"]
        found = file_search.annotations(value, cited) + code_interpreter.annotations(value, written)
        found.sort(key=lambda a: a["start_index"])
        content = [dict(part, text={"value": value, "annotations": found}), *message["content"][1:]]
        content += [{"type": "image_file", "image_file": {"file_id": image, "detail": "auto"}} for image in images]
        # Each image goes into one message only: the first one the run completes after it.
        turn.state = dict(turn.state, images=[])
        return dict(message, content=content)

    @staticmethod
    def _final_message_events(message: dict) -> list[tuple[str, dict]]:
        """The message's final event, after one delta announcing its citations (the SDK
        merges annotations into the text it streamed, by index)."""
        events = []
        found = message["content"][0]["text"]["annotations"] if message["content"] and message["content"][0]["type"] == "text" else []
        parts = []
        if found:
            parts.append({"index": 0, "type": "text", "text": {"annotations": [dict(a, index=i) for i, a in enumerate(found)]}})
        parts += [dict(p, index=i) for i, p in enumerate(message["content"]) if i > 0]
        if parts:
            events.append(("thread.message.delta", {"id": message["id"], "object": "thread.message.delta", "delta": {"content": parts}}))
        events.append((f"thread.message.{message['status']}", message))
        return events

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
