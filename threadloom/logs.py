"""The process's log: every line with its time and level, as text for people or as one
JSON object per line (`--log-format json`) for log pipelines. Fields given with
`extra={"fields": {...}}` become keys of the JSON object, or `key=value` pairs after the
text (but for those named in `extra={"in_message": (...)}`, which the text already says)."""

from __future__ import annotations

import logging
import sys
import time

import orjson

FORMATS = ("text", "json")


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\n", " ")  # one event, one line
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {message}"
        fields = getattr(record, "fields", None)
        if fields:
            said = getattr(record, "in_message", ())  # already in the message: not repeated
            pairs = [f"{k}={_text(v)}" for k, v in fields.items() if v is not None and k not in said]
            if pairs:
                line += " " + " ".join(pairs)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value) -> str:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    text = str(value)
    return orjson.dumps(text).decode() if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _timestamp(record), "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, fmt: str) -> None:
    """One handler on the root logger, for threadloom's loggers and uvicorn's alike."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # debug is threadloom's own detail; other libraries' debug output stays out.
    root.setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
    logging.getLogger("threadloom").setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Per-request lines are ours (api/request_log.py); uvicorn's access log would repeat them.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic names each of its plugins at every start; its migrations stay at INFO.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
