"""What the person running threadloom sees: the log (read from the process's own output),
request ids, /metrics (parsed with prometheus-client's parser), /readyz, /docs and
/openapi.json, CORS (with real headless Chromium calling from another origin), and a
command line that explains itself. The model is the scripted upstream (a test double for
the LLM)."""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from test_server_cli import launch  # noqa: F401 (fixture)
from langgraph_support import client as lg_client
from run_checks import create_assistant, create_thread, start_run, wait_run

BETA = {"OpenAI-Beta": "assistants=v2"}


def log_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def json_server(server_factory, upstream_process):
    return server_factory("--upstream", upstream_process.url, "--log-format", "json")


# -- request ids and the log -----------------------------------------------------------------


def test_every_response_carries_a_request_id_the_sdk_exposes(json_server):
    with OpenAI(base_url=json_server.v1, api_key="k", max_retries=0) as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        assert assistant._request_id and assistant._request_id.startswith("req_")
    given = httpx.get(json_server.v1 + "/assistants", headers={**BETA, "x-request-id": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    missing = httpx.get(json_server.v1 + "/threads/thread_nope", headers=BETA)
    assert missing.status_code == 404 and missing.headers["x-request-id"].startswith("req_")
    line = next(e for e in log_lines(json_server) if e.get("request_id") == "trace-42")
    assert line["method"] == "GET" and line["path"] == "/v1/assistants" and line["status"] == 200
    assert line["level"] == "info" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert isinstance(line["duration_ms"], float)


def test_each_run_state_change_is_one_line_and_failures_are_errors(json_server, upstream):
    with httpx.Client(base_url=json_server.v1, timeout=30, headers=BETA) as h:
        assistant = create_assistant(h)
        upstream.script({"text": "fine"})
        thread = create_thread(h, "hi")
        ok = start_run(h, thread["id"], assistant_id=assistant["id"])
        assert wait_run(h, thread["id"], ok["id"])["status"] == "completed"
        upstream.script({"status": 400, "error": {"message": "context too long"}})
        bad_thread = create_thread(h, "hi")
        bad = start_run(h, bad_thread["id"], assistant_id=assistant["id"])
        assert wait_run(h, bad_thread["id"], bad["id"])["status"] == "failed"
    lines = log_lines(json_server)
    states = [(e["status"], e["level"]) for e in lines if e.get("run") == ok["id"]]
    assert states == [("queued", "info"), ("in_progress", "info"), ("completed", "info")]
    done = next(e for e in lines if e.get("run") == ok["id"] and e["status"] == "completed")
    assert done["thread"] == thread["id"] and done["model"] == "gpt-4o" and done["tokens"] > 0 and "duration_s" in done
    failed = next(e for e in lines if e.get("run") == bad["id"] and e["status"] == "failed")
    assert failed["level"] == "error" and "context too long" in failed["last_error"]


def test_text_log_lines_have_time_and_level_and_debug_shows_model_calls(server_factory, upstream):
    server = server_factory("--upstream", upstream.url, "--log-level", "debug")
    with httpx.Client(base_url=server.v1, timeout=30, headers=BETA) as h:
        assistant = create_assistant(h)
        upstream.script({"text": "fine"})
        thread = create_thread(h, "hi")
        run = start_run(h, thread["id"], assistant_id=assistant["id"])
        wait_run(h, thread["id"], run["id"])
    lines = [line for line in server.log().splitlines() if line.strip() and not line.startswith((" ", "Traceback"))]
    assert all(re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO|WARNING|ERROR)\s", line) for line in lines), lines[:5]
    assert any(f"model call for run {run['id']}" in line and "messages=" in line for line in lines)
    assert any("threadloom 0.1.0 server listening on" in line for line in lines)


# -- metrics and readiness -------------------------------------------------------------------


def metric_samples(server) -> dict[tuple, float]:
    text = httpx.get(server.url + "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_count_requests_runs_tokens_and_first_tokens(server_factory, upstream):
    server = server_factory("--upstream", upstream.url)
    with httpx.Client(base_url=server.v1, timeout=30, headers=BETA) as h:
        assistant = create_assistant(h)
        for _ in range(2):
            upstream.script({"text": "one two three"})
            thread = create_thread(h, "hi")
            wait_run(h, thread["id"], start_run(h, thread["id"], assistant_id=assistant["id"])["id"])
        h.get("/threads/thread_missing")
    samples = metric_samples(server)
    route = lambda path, method, status: ("threadloom_requests_total", (("method", method), ("route", path), ("status", status)))
    assert samples[route("/v1/threads/{thread_id}/runs", "POST", "200")] == 2
    assert samples[route("/v1/threads/{thread_id}", "GET", "404")] == 1
    assert samples[("threadloom_runs_finished_total", (("status", "completed"),))] == 2
    assert samples[("threadloom_run_duration_seconds_count", ())] == 2
    assert samples[("threadloom_time_to_first_token_seconds_count", ())] == 2
    assert samples[("threadloom_tokens_total", (("kind", "completion"),))] > 0
    assert samples[("threadloom_queued_runs", ())] == 0
    assert ("threadloom_active_streams", ()) in samples and ("threadloom_embedded_busy_seconds_total", ()) in samples


def test_metrics_count_upstream_errors_by_kind(server_factory, upstream):
    server = server_factory("--upstream", upstream.url)
    with httpx.Client(base_url=server.v1, timeout=30, headers=BETA) as h:
        assistant = create_assistant(h)
        upstream.script({"status": 400, "error": {"message": "no"}})
        thread = create_thread(h, "hi")
        wait_run(h, thread["id"], start_run(h, thread["id"], assistant_id=assistant["id"])["id"])
    assert metric_samples(server)[("threadloom_upstream_errors_total", (("kind", "http_4xx"),))] == 1


def test_readyz_waits_for_a_model_that_can_serve(server_factory, upstream, tmp_path):
    ready = server_factory("--upstream", upstream.url)
    response = httpx.get(ready.url + "/readyz")
    assert response.status_code == 200 and response.json()["checks"]["database"]["ok"] is True
    # A model file that is not there: alive (healthz) but never ready, and it says why.
    broken = server_factory("--model-path", str(tmp_path / "missing.gguf"))
    assert httpx.get(broken.url + "/healthz").status_code == 200
    response = httpx.get(broken.url + "/readyz")
    assert response.status_code == 503
    assert "missing.gguf" in response.json()["checks"]["model *"]["detail"]
    # An upstream that does not answer.
    port = free_port()
    silent = server_factory("--upstream", f"http://127.0.0.1:{port}/v1")
    response = httpx.get(silent.url + "/readyz")
    assert response.status_code == 503 and response.json()["checks"]["model *"]["ok"] is False


# -- the API's description -----------------------------------------------------------------


def test_openapi_and_docs_describe_both_doors_behind_the_key(server_factory, upstream):
    server = server_factory("--upstream", upstream.url, "--api-key", "sk-docs-key-1234")
    assert httpx.get(server.url + "/openapi.json").status_code == 401
    assert httpx.get(server.url + "/docs").status_code == 401
    key = {"Authorization": "Bearer sk-docs-key-1234"}
    document = httpx.get(server.url + "/openapi.json", headers=key).json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert {"/v1/assistants", "/v1/threads/{thread_id}/runs", "/v1/vector_stores", "/threads", "/runs/stream", "/assistants/search"} <= set(paths)
    assert {t["name"] for t in document["tags"]} == {"OpenAI Assistants API v2", "LangGraph Agent Server API"}
    assert paths["/v1/assistants"]["post"]["tags"] == ["OpenAI Assistants API v2"]
    page = httpx.get(server.url + "/docs", headers=key)
    assert page.status_code == 200 and "/openapi.json" in page.text
    # Its script and style come from this server, not from the internet.
    for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text):
        assert httpx.get(server.url + asset, headers=key).status_code == 200
    assert "https://" not in page.text


# -- CORS, from a real browser -----------------------------------------------------------------

PAGE = """<!doctype html><html><body><pre id="result">pending</pre><script>
async function main() {
  const out = {};
  try {
    const a = await fetch(API + "/v1/assistants", {method: "POST", headers: {"Content-Type": "application/json",
      "Authorization": "Bearer sk-browser-key-1", "OpenAI-Beta": "assistants=v2"}, body: JSON.stringify({model: "gpt-4o"})});
    out.openai = a.status;
    out.request_id = a.headers.get("x-request-id");
    out.assistant = (await a.json()).id;
    const t = await fetch(API + "/threads", {method: "POST", headers: {"Content-Type": "application/json",
      "Authorization": "Bearer sk-browser-key-1"}, body: "{}"});
    out.langgraph = t.status;
    out.thread = (await t.json()).thread_id;
  } catch (e) { out.error = String(e); }
  document.getElementById("result").textContent = JSON.stringify(out);
}
main();
</script></body></html>"""


def _serve_page(api_url: str, port: int) -> http.server.HTTPServer:
    body = PAGE.replace("API + ", json.dumps(api_url) + " + ").encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _browse(api_url: str, page_port: int) -> dict:
    """What the page on http://127.0.0.1:<page_port> got from the API, run by Chromium."""
    httpd = _serve_page(api_url, page_port)
    try:
        result = subprocess.run(
            [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--virtual-time-budget=15000", "--dump-dom", f"http://127.0.0.1:{page_port}/page.html"],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        httpd.shutdown()
    found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium (Debian package chromium)")


@needs_chromium
def test_a_browser_on_an_allowed_origin_calls_both_doors(server_factory, upstream):
    page_port = free_port()
    server = server_factory("--upstream", upstream.url, "--api-key", "sk-browser-key-1",
                            "--cors-origin", f"http://127.0.0.1:{page_port}")
    result = _browse(server.url, page_port)
    assert result.get("openai") == 200 and result.get("langgraph") == 200, result
    assert result["request_id"].startswith("req_")  # exposed to the page's script
    key = {"Authorization": "Bearer sk-browser-key-1", **BETA}
    assert httpx.get(f"{server.v1}/assistants/{result['assistant']}", headers=key).status_code == 200
    assert httpx.get(f"{server.url}/threads/{result['thread']}", headers=key).status_code == 200


@needs_chromium
def test_a_browser_on_another_origin_is_refused_and_writes_nothing(server_factory, upstream):
    page_port = free_port()
    server = server_factory("--upstream", upstream.url, "--api-key", "sk-browser-key-1",
                            "--cors-origin", "https://app.example.com")
    result = _browse(server.url, page_port)
    assert "Failed to fetch" in result.get("error", ""), result
    key = {"Authorization": "Bearer sk-browser-key-1", **BETA}
    assert httpx.get(f"{server.v1}/assistants", headers=key).json()["data"] == []


@pytest.mark.parametrize("path", ["/v1/threads", "/threads", "/runs/stream"])
def test_preflights_are_answered_on_both_doors(server_factory, upstream, path):
    server = cors_server(server_factory, upstream)
    response = httpx.options(server.url + path, headers={
        "Origin": "https://ui.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,openai-beta"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://ui.example.com")
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    # The answer to the request itself carries the header too, 401 included.
    refused = httpx.post(server.url + path, headers={"Origin": "https://ui.example.com"}, json={})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] in ("*", "https://ui.example.com")


_cors = {}


def cors_server(server_factory, upstream):
    if "server" not in _cors:
        _cors["server"] = server_factory("--upstream", upstream.url, "--api-key", "sk-k-12345678", "--cors-origin", "*")
    return _cors["server"]


# -- LangGraph messages say what the model reported -------------------------------------------------


def test_langgraph_ai_messages_carry_usage_and_response_metadata(server, upstream):
    upstream.script({"text": "Hello there.", "usage": {"prompt_tokens": 11, "completion_tokens": 3}})

    async def main():
        lg = lg_client(server)
        thread = await lg.threads.create()
        return await lg.runs.wait(thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "hi"}]})

    values = asyncio.run(main())
    reply = values["messages"][-1]
    assert reply["type"] == "ai" and reply["content"] == "Hello there."
    assert reply["usage_metadata"] == {"input_tokens": 11, "output_tokens": 3, "total_tokens": 14}
    assert reply["response_metadata"]["finish_reason"] == "stop" and reply["response_metadata"]["model_name"]


# -- the command line ----------------------------------------------------------------------------


def cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "threadloom.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_version_and_help_explain_the_command():
    version = cli("--version")
    assert version.returncode == 0 and re.fullmatch(r"threadloom \d+\.\d+\.\d+\n", version.stdout)
    top = cli("--help").stdout
    assert "Assistants API" in top and "serve" in top and "worker" in top and "migrate" in top
    serve = cli("serve", "--help").stdout
    assert "(default: 8000)" in serve and "THREADLOOM_PORT" in serve and "--cors-origin" in serve
    assert "(default: text)" in serve


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    result = cli("serve", "--port", str(free_port()), "--database", str(tmp_path / "no" / "such" / "dir" / "x.db"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "cannot open the database" in result.stderr and "x.db" in result.stderr


def test_postgresql_that_does_not_answer_is_waited_for_then_named_without_its_password(tmp_path):
    port = free_port()
    result = cli("migrate", "--database", f"postgresql://me:secret@127.0.0.1:{port}/db", timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "secret" not in result.stderr and "***" in result.stderr
    assert "waiting for the database" in result.stderr and "cannot open the database" in result.stderr


def test_a_port_in_use_is_reported_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), "--database", "./fresh.db", cwd=tmp_path)
    assert result.returncode == 1 and f"port {port}" in result.stderr and "in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "fresh.db").exists()  # nothing was migrated


def test_a_database_path_is_understood_as_a_sqlite_file(launch, tmp_path):
    server = launch("serve", "--database", "./my.db")
    assert httpx.post(server.url + "/v1/threads", headers=BETA).status_code == 200
    assert (tmp_path / "my.db").exists()


@pytest.mark.parametrize("args,mentions", [
    (["--upstream", "localhost:11434"], "--upstream"),
    (["--upstream", "ftp://x/v1"], "--upstream"),
    (["--log-format", "xml"], "--log-format"),
    (["--log-level", "loud"], "--log-level"),
    (["--cors-origin", "example.com"], "--cors-origin"),
])
def test_bad_flags_are_usage_errors(tmp_path, args, mentions):
    result = cli("serve", "--database", str(tmp_path / "x.db"), *args)
    assert result.returncode == 2 and "usage:" in result.stderr and mentions in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_keys_in_the_models_file_are_reported(tmp_path):
    config = tmp_path / "models.toml"
    config.write_text('colour = "blue"\n[[models]]\npattern = "*"\nbackend = "openai_compat"\nurl = "http://127.0.0.1:1/v1"\n')
    result = cli("serve", "--database", str(tmp_path / "x.db"), "--models-config", str(config))
    assert result.returncode == 2 and "colour" in result.stderr
    config.write_text('[[models]]\npattern = "*"\nbackend = "openai_compat"\nurl = "http://127.0.0.1:1/v1"\nurl_typo = 1\n')
    result = cli("serve", "--database", str(tmp_path / "x.db"), "--models-config", str(config))
    assert result.returncode == 2 and "url_typo" in result.stderr


def test_an_upstream_url_without_v1_that_answers_404_is_explained(server_factory, upstream):
    server = server_factory("--upstream", upstream.root + "/api")  # the model server, minus its /v1
    with httpx.Client(base_url=server.v1, timeout=30, headers=BETA) as h:
        assistant = create_assistant(h)
        thread = create_thread(h, "hi")
        failed = wait_run(h, thread["id"], start_run(h, thread["id"], assistant_id=assistant["id"])["id"])
    assert failed["status"] == "failed" and "end in /v1" in failed["last_error"]["message"]
