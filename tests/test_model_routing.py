"""Model routing: which backend serves which model name, from a TOML file, flags and
--upstream, first match wins. Two scripted OpenAI-compatible servers (test doubles for
the LLM) stand for two model servers; what each was sent shows where a run went."""

from __future__ import annotations

import pytest

from conftest import start_upstream, stop
from run_checks import create_assistant, create_thread, start_run, wait_run


@pytest.fixture(scope="module")
def second_upstream():
    up = start_upstream()
    yield up
    stop(up.proc)


@pytest.fixture(scope="module")
def routed(server_factory, upstream_process, second_upstream, tmp_path_factory):
    config = tmp_path_factory.mktemp("routing") / "models.toml"
    config.write_text(
        "[[models]]\n"
        'pattern = "gpt-4o"\n'
        'backend = "openai_compat"\n'
        f'url = "{second_upstream.url}"\n'
        'model = "qwen2.5-7b-instruct"\n'
        "\n[[models]]\n"
        'pattern = "llama*"\n'
        'backend = "openai_compat"\n'
        f'url = "{second_upstream.url}"\n'
    )
    return server_factory(
        "--route", f"llama-guard=openai_compat,url={upstream_process.url}",
        "--models-config", str(config),
        "--upstream", upstream_process.url,
    )


def _run_with_model(server, model: str) -> None:
    import httpx

    with httpx.Client(base_url=server.v1, timeout=30) as http:
        assistant = create_assistant(http, model=model)
        thread = create_thread(http, "hello")
        run = wait_run(http, thread["id"], start_run(http, thread["id"], assistant_id=assistant["id"])["id"])
        assert run["status"] == "completed", run
        assert run["model"] == model  # the run shows the name the client asked for


def test_each_model_name_goes_where_its_first_matching_route_says(routed, upstream_process, second_upstream):
    upstream_process.reset()
    second_upstream.reset()
    _run_with_model(routed, "gpt-4o")  # the TOML file: renamed for its server
    _run_with_model(routed, "llama-3.1-8b")  # a glob: sent as is
    _run_with_model(routed, "llama-guard")  # a --route flag, listed before the file: wins over llama*
    _run_with_model(routed, "mistral-small")  # nothing matches: the --upstream catch-all
    assert [r["model"] for r in second_upstream.requests()] == ["qwen2.5-7b-instruct", "llama-3.1-8b"]
    assert [r["model"] for r in upstream_process.requests()] == ["llama-guard", "mistral-small"]


def test_models_lists_the_routes_in_order(routed):
    from openai import OpenAI

    with OpenAI(base_url=routed.v1, api_key="k", max_retries=0) as c:
        models = c.models.list()
        assert [m.id for m in models.data] == ["llama-guard", "gpt-4o", "llama*", "*"]
        assert {m.owned_by for m in models.data} == {"threadloom:openai_compat"}
        assert c.models.retrieve("llama-3").id == "llama-3"
