"""Every setting of the server in one place: each has a flag and a THREADLOOM_* variable.

Precedence: command-line flag, then environment variable, then config file (models only),
then the default.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass

from threadloom.logs import FORMATS


@dataclass(frozen=True)
class ModelRoute:
    """Which backend serves the model names matching `pattern` (exact name or glob)."""

    pattern: str
    backend: str  # "openai_compat" | "embedded"
    url: str | None = None  # openai_compat: base URL ending in /v1
    api_key: str | None = None
    model: str | None = None  # name sent to the backend; None = the name the client asked for
    model_path: str | None = None  # embedded: a GGUF file; None = the packaged default model


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database: str = "sqlite:///./threadloom.db"
    api_keys: dict[str, str] | None = None  # key -> project; None or empty: any key, one project
    routes: tuple[ModelRoute, ...] = ()
    model_path: str | None = None
    upstream_timeout: float = 600.0
    embedded_context: int = 8192
    embedded_threads: int | None = None
    embedded_max_tokens: int = 1024
    run_ttl: int = 600
    log_level: str = "info"
    max_file_size: int = 512 * 1024 * 1024
    shutdown_grace: float = 10.0
    max_request_size: int = 32 * 1024 * 1024
    read_timeout: float = 10.0
    code_timeout: float = 60.0
    code_idle: float = 3600.0
    sandbox_dir: str | None = None
    embeddings: str = "local"  # "local" or an OpenAI-compatible base URL ending in /v1
    embeddings_model: str | None = None
    embeddings_api_key: str | None = None
    redis: str | None = None  # the shared event bus of several processes
    log_format: str = "text"
    cors_origins: tuple[str, ...] = ()
    executes: bool = True  # False: an API replica; `threadloom worker`s execute its runs
    langgraph_config: str | None = None  # a langgraph.json naming the user's graphs


def _env(name: str, default=None):
    return os.environ.get("THREADLOOM_" + name, default)


def _env_list(name: str) -> list[str]:
    raw = _env(name)
    if not raw:
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_route(text: str) -> ModelRoute:
    """Parse `PATTERN=BACKEND[,key=value...]`, e.g.
    `gpt-4o=openai_compat,url=http://127.0.0.1:11434/v1,api_key=sk-x,model=llama3`
    or `*=embedded,model_path=/models/x.gguf`."""
    if "=" not in text:
        raise ValueError(f"route {text!r}: expected PATTERN=BACKEND[,key=value...]")
    pattern, rest = text.split("=", 1)
    parts = rest.split(",")
    backend = parts[0].strip()
    options: dict[str, str] = {}
    for part in parts[1:]:
        if "=" not in part:
            raise ValueError(f"route {text!r}: option {part!r} is not key=value")
        key, value = part.split("=", 1)
        options[key.strip()] = value.strip()
    return _route_from_mapping({"pattern": pattern.strip(), "backend": backend, **options})


def _route_from_mapping(data: dict) -> ModelRoute:
    backend = data.get("backend", "openai_compat")
    if backend not in ("openai_compat", "embedded"):
        raise ValueError(f"unknown model backend {backend!r} (openai_compat or embedded)")
    allowed = {"pattern", "backend", "url", "api_key", "model", "model_path"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown route option(s): {', '.join(sorted(unknown))}")
    if backend == "openai_compat" and not data.get("url"):
        raise ValueError(f"route {data.get('pattern')!r}: openai_compat needs url=")
    if data.get("url"):
        check_base_url(data["url"], f"route {data.get('pattern')!r}: url")
    return ModelRoute(
        pattern=data.get("pattern", "*"),
        backend=backend,
        url=data.get("url"),
        api_key=data.get("api_key"),
        model=data.get("model"),
        model_path=data.get("model_path"),
    )


def check_base_url(url: str, what: str) -> None:
    """An OpenAI-compatible base URL: http(s)://host[:port]/... (most end in /v1)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        parts.port  # raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {url!r}: expected an http(s) base URL such as http://127.0.0.1:11434/v1")


def shown_url(url: str) -> str:
    """A database or Redis URL with its password hidden, for logs and messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def database_url(value: str) -> str:
    """A SQLAlchemy URL, or a path to a SQLite file (`./my.db`, `/var/lib/threadloom.db`)."""
    if "://" in value:
        return value
    import pathlib

    return "sqlite:///" + str(pathlib.Path(value).expanduser().resolve())


def load_routes_file(path: str) -> list[ModelRoute]:
    """A TOML file with `[[models]]` tables (pattern, backend, url, api_key, model, model_path)."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    unknown = set(data) - {"models"}
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))} (expected [[models]] tables)")
    try:
        return [_route_from_mapping(entry) for entry in data.get("models", [])]
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def build_routes(
    route_flags: list[str],
    config_file: str | None,
    upstream: str | None,
    upstream_api_key: str | None,
    upstream_model: str | None,
    model_path: str | None,
) -> tuple[ModelRoute, ...]:
    """Routes are tried in order; the first match wins. A catch-all comes last: the
    upstream if one is given, else the embedded model."""
    routes = [parse_route(r) for r in route_flags]
    if config_file:
        routes += load_routes_file(config_file)
    if upstream:
        routes.append(
            ModelRoute("*", "openai_compat", url=upstream, api_key=upstream_api_key, model=upstream_model)
        )
    if not any(r.pattern == "*" for r in routes):
        routes.append(ModelRoute("*", "embedded", model_path=model_path))
    return tuple(routes)


def parse_api_keys(entries: list[str]) -> dict[str, str]:
    """`KEY` (the default project) or `KEY:PROJECT` -> {key: project}."""
    keys: dict[str, str] = {}
    for entry in entries:
        key, _, project = entry.partition(":")
        key, project = key.strip(), project.strip() or "default"
        if not key:
            raise ValueError(f"--api-key {entry!r}: the key is empty")
        if len(project) > 64:
            raise ValueError(f"--api-key {entry!r}: a project name has at most 64 characters")
        keys[key] = project
    return keys


def load_api_keys_file(path: str) -> dict[str, str]:
    """A TOML file of `[[keys]]` tables with `key` and optional `project`."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    unknown = set(data) - {"keys"}
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))} (expected [[keys]] tables)")
    keys: dict[str, str] = {}
    for entry in data.get("keys", []):
        extra = set(entry) - {"key", "project"}
        if extra or not entry.get("key"):
            raise ValueError(f"{path}: each [[keys]] needs `key` (and may have `project`), got {sorted(entry)}")
        keys.update(parse_api_keys([f"{entry['key']}:{entry.get('project', 'default')}"]))
    return keys


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    # Defaults taken from the environment stay strings: argparse converts them with the
    # option's type, so a bad THREADLOOM_PORT is a usage error naming --port.
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="THREADLOOM_HOST")
    parser.add_argument("--port", type=int, default=_env("PORT", "8000"), help="THREADLOOM_PORT")
    parser.add_argument(
        "--database",
        default=_env("DATABASE", "sqlite:///./threadloom.db"),
        help="SQLAlchemy URL: sqlite:///FILE or postgresql://... (THREADLOOM_DATABASE)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        default=None,
        help="accepted bearer key, KEY or KEY:PROJECT, repeatable (THREADLOOM_API_KEYS, comma-separated); none = any key",
    )
    parser.add_argument("--api-keys-file", default=_env("API_KEYS_FILE"), help="TOML file of [[keys]] with key and project (THREADLOOM_API_KEYS_FILE)")
    parser.add_argument("--upstream", default=_env("UPSTREAM"), help="OpenAI-compatible base URL serving every model name (THREADLOOM_UPSTREAM)")
    parser.add_argument("--upstream-api-key", default=_env("UPSTREAM_API_KEY"), help="THREADLOOM_UPSTREAM_API_KEY")
    parser.add_argument("--upstream-model", default=_env("UPSTREAM_MODEL"), help="send this model name upstream instead of the run's (THREADLOOM_UPSTREAM_MODEL)")
    parser.add_argument("--upstream-timeout", type=float, default=_env("UPSTREAM_TIMEOUT", "600"), help="seconds (THREADLOOM_UPSTREAM_TIMEOUT)")
    parser.add_argument(
        "--route",
        action="append",
        default=None,
        help="PATTERN=BACKEND[,url=..,api_key=..,model=..,model_path=..], repeatable (THREADLOOM_ROUTES, ';'-separated)",
    )
    parser.add_argument("--models-config", default=_env("MODELS_CONFIG"), help="TOML file with [[models]] routes (THREADLOOM_MODELS_CONFIG)")
    parser.add_argument("--model-path", default=_env("MODEL_PATH"), help="GGUF file for the embedded backend (THREADLOOM_MODEL_PATH)")
    parser.add_argument("--embedded-context", type=int, default=_env("EMBEDDED_CONTEXT", "8192"), help="context window of the embedded model (THREADLOOM_EMBEDDED_CONTEXT)")
    parser.add_argument("--embedded-threads", type=int, default=_env("EMBEDDED_THREADS"), help="CPU threads of the embedded model; default half the cores (THREADLOOM_EMBEDDED_THREADS)")
    parser.add_argument("--embedded-max-tokens", type=int, default=_env("EMBEDDED_MAX_TOKENS", "1024"), help="tokens a turn of the embedded model may write when the run sets no max_completion_tokens (THREADLOOM_EMBEDDED_MAX_TOKENS)")
    parser.add_argument("--run-ttl", type=int, default=_env("RUN_TTL", "600"), help="seconds a run may take, tool-output waits included, before it expires (THREADLOOM_RUN_TTL; OpenAI: 600)")
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "info"),
                        help="debug, info, warning or error; debug adds each model call (THREADLOOM_LOG_LEVEL)")
    parser.add_argument("--log-format", default=_env("LOG_FORMAT", "text"), help="text, or json: one object per line (THREADLOOM_LOG_FORMAT)")
    parser.add_argument("--langgraph-config", default=_env("LANGGRAPH_CONFIG"), metavar="PATH",
                        help="a langgraph.json whose graphs the LangGraph door serves beside the built-in `agent` (THREADLOOM_LANGGRAPH_CONFIG)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="repeatable; browsers on this origin (or * for any) may call the API (THREADLOOM_CORS_ORIGINS, comma-separated)")
    parser.add_argument("--shutdown-grace", type=float, default=_env("SHUTDOWN_GRACE", "10"), help="seconds running turns get to finish on SIGTERM/SIGINT before their runs are ended (THREADLOOM_SHUTDOWN_GRACE)")
    parser.add_argument("--read-timeout", type=float, default=_env("READ_TIMEOUT", "10"), help="seconds a client has to send a request's headers (its body then gets this plus 1 s per 64 KiB) (THREADLOOM_READ_TIMEOUT)")
    parser.add_argument("--code-timeout", type=float, default=_env("CODE_TIMEOUT", "60"), help="seconds one code_interpreter execution may take (THREADLOOM_CODE_TIMEOUT)")
    parser.add_argument("--code-idle", type=float, default=_env("CODE_IDLE", "3600"), help="seconds a thread's idle code session lives (THREADLOOM_CODE_IDLE; OpenAI: one hour)")
    parser.add_argument("--sandbox-dir", default=_env("SANDBOX_DIR"), help="where code sessions keep their files; default a new temporary folder (THREADLOOM_SANDBOX_DIR)")
    parser.add_argument("--max-request-size", type=int, default=_env("MAX_REQUEST_SIZE", str(32 * 1024 * 1024)), help="largest request body in bytes, uploads to /v1/files apart (THREADLOOM_MAX_REQUEST_SIZE)")
    parser.add_argument("--max-file-size", type=int, default=_env("MAX_FILE_SIZE", str(512 * 1024 * 1024)), help="largest upload to /v1/files, in bytes (THREADLOOM_MAX_FILE_SIZE; OpenAI: 512 MB)")
    parser.add_argument("--embeddings", default=_env("EMBEDDINGS", "local"), help="'local' (the packaged all-MiniLM-L6-v2, offline) or an OpenAI-compatible base URL ending in /v1 (THREADLOOM_EMBEDDINGS)")
    parser.add_argument("--embeddings-model", default=_env("EMBEDDINGS_MODEL"), help="model name sent to the embeddings URL (THREADLOOM_EMBEDDINGS_MODEL)")
    parser.add_argument("--embeddings-api-key", default=_env("EMBEDDINGS_API_KEY"), help="THREADLOOM_EMBEDDINGS_API_KEY")
    parser.add_argument("--redis", default=_env("REDIS"), help="redis:// URL of the event bus that several processes share; runs stream from any of them (THREADLOOM_REDIS)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    if args.redis and not args.redis.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"--redis {args.redis!r}: expected a redis://host:port/db URL")
    if getattr(args, "no_executor", False) and not args.redis:
        raise ValueError("--no-executor needs --redis: the workers that execute the runs reach this replica's clients over it")
    if getattr(args, "command", None) == "worker" and not args.redis:
        raise ValueError("threadloom worker needs --redis: the API replicas' clients read the runs' events over it")
    if args.embeddings != "local":
        if not args.embeddings.startswith(("http://", "https://")):
            raise ValueError(f"--embeddings {args.embeddings!r}: expected 'local' or an http(s) URL ending in /v1")
        if not args.embeddings_model:
            raise ValueError("--embeddings URL needs --embeddings-model (the model name the endpoint serves)")
    api_keys = parse_api_keys(args.api_keys if args.api_keys else _env_list("API_KEYS"))
    if args.api_keys_file:
        api_keys.update(load_api_keys_file(args.api_keys_file))
    route_flags = args.route if args.route else [r for r in (_env("ROUTES") or "").split(";") if r.strip()]
    if args.upstream:
        check_base_url(args.upstream, "--upstream")
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ValueError(f"--log-level {args.log_level!r}: expected debug, info, warning or error")
    if args.log_format not in FORMATS:
        raise ValueError(f"--log-format {args.log_format!r}: expected one of {', '.join(FORMATS)}")
    cors = args.cors_origin if args.cors_origin else _env_list("CORS_ORIGINS")
    for origin in cors:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"--cors-origin {origin!r}: expected * or an origin such as https://app.example.com")
    return Settings(
        host=args.host,
        port=args.port,
        database=database_url(args.database),
        api_keys=api_keys,
        routes=build_routes(
            route_flags,
            args.models_config,
            args.upstream,
            args.upstream_api_key,
            args.upstream_model,
            args.model_path,
        ),
        model_path=args.model_path,
        upstream_timeout=args.upstream_timeout,
        embedded_context=args.embedded_context,
        embedded_threads=args.embedded_threads,
        embedded_max_tokens=args.embedded_max_tokens,
        run_ttl=args.run_ttl,
        log_level=args.log_level.lower(),
        max_file_size=args.max_file_size,
        shutdown_grace=args.shutdown_grace,
        max_request_size=args.max_request_size,
        read_timeout=args.read_timeout,
        code_timeout=args.code_timeout,
        code_idle=args.code_idle,
        sandbox_dir=args.sandbox_dir,
        embeddings=args.embeddings,
        embeddings_model=args.embeddings_model,
        embeddings_api_key=args.embeddings_api_key,
        redis=args.redis,
        log_format=args.log_format,
        cors_origins=tuple(origin.rstrip("/") for origin in cors),
        executes=not getattr(args, "no_executor", False),
        langgraph_config=getattr(args, "langgraph_config", None),
    )
