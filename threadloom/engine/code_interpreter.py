"""The built-in `code_interpreter` tool as the engine runs it: the function the model is
offered, the execution in the thread's sandboxed kernel (threadloom/sandbox), what the run
step shows (input, logs, images) and what the model reads back. Images and files the code
writes under /mnt/data become files (`purpose: assistants_output`) the client can download;
the model refers to a written file as `sandbox:/mnt/data/NAME`, which the finished message
turns into a `file_path` annotation.
"""

from __future__ import annotations

import re

import orjson

NAME = "code_interpreter"
DEFINITION = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Run Python code in a Jupyter-like session that keeps its state between calls. Files the user "
            "attached are in /mnt/data; save files there to give them to the user, and refer to them as "
            "sandbox:/mnt/data/NAME. numpy, pandas and matplotlib are installed; there is no network."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}
_SANDBOX_PATH = re.compile(r"sandbox:/mnt/data/([^\s)\]\"'`]+)")


def code_of(arguments: str) -> str:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments  # a model that sent the code bare
    if isinstance(value, dict):
        return str(value.get("code") or value.get("input") or "")
    return str(value)


def tool_call(call_id: str, code: str, outputs: list[dict]) -> dict:
    return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"input": code, "outputs": outputs}}


def model_output(call: dict) -> str:
    """What the model reads back from an execution: its logs (which name the files it
    wrote) and the images it showed."""
    parts = []
    for output in call["code_interpreter"]["outputs"]:
        if output["type"] == "logs" and output["logs"]:
            parts.append(output["logs"])
        elif output["type"] == "image":
            parts.append(f"[an image was shown to the user: file {output['image']['file_id']}]")
    return "\n".join(parts) if parts else "(no output)"


def annotations(text: str, files: dict[str, str]) -> list[dict]:
    """file_path annotations for `sandbox:/mnt/data/NAME` in `text` (`files`: name -> file id)."""
    out = []
    for match in _SANDBOX_PATH.finditer(text):
        file_id = files.get(match.group(1).rstrip(".,;:"))
        if file_id is None:
            continue
        end = match.start() + len("sandbox:/mnt/data/") + len(match.group(1).rstrip(".,;:"))
        out.append({
            "type": "file_path",
            "text": text[match.start():end],
            "start_index": match.start(),
            "end_index": end,
            "file_path": {"file_id": file_id},
        })
    return out


class CodeInterpreterTool:
    """Runs the model's code in the thread's sandboxed session and keeps what it made."""

    def __init__(self, sessions, files):
        self.sessions = sessions  # threadloom.sandbox.CodeSessions
        self.files = files  # services.files.FileService

    async def run(self, session_id: str, call_id: str, code: str, file_ids: list[str]) -> tuple[dict, dict[str, str], list[str]]:
        """The step's tool call, the files written (name -> file id) and the images shown
        (file ids)."""
        inputs = await self.files.read_many(file_ids)
        result = await self.sessions.execute(session_id, code, inputs)
        logs = result.logs or ""
        if result.error:
            logs = f"{logs}\n{result.error}" if logs else result.error
        written: dict[str, str] = {}
        for name, data in result.files:
            written[name] = (await self.files.store_output(name.rsplit("/", 1)[-1], data))["id"]
            logs += f"\n[file written: sandbox:/mnt/data/{name}]"
        images = [(await self.files.store_output(f"image-{i}.png", png))["id"] for i, png in enumerate(result.images)]
        outputs: list[dict] = []
        if logs.strip():
            outputs.append({"type": "logs", "logs": logs.strip("\n")})
        outputs += [{"type": "image", "image": {"file_id": image}} for image in images]
        return tool_call(call_id, code, outputs), written, images

    async def interrupt(self, session_id: str) -> None:
        await self.sessions.interrupt(session_id)
