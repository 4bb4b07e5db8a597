"""The official LangGraph JS SDK (@langchain/langgraph-sdk, pinned in tests/js/package.json
and its lock) against a server process serving tests/graphs/: tests/js/sdk_flow.mjs drives
assistants, streamed runs, an interrupt and its resume, a background run joined, the
thread stream, prune, the store and crons, and prints what it saw; this test checks it.

Needs Node.js and npm (the SDK is installed into tests/js/node_modules from the npm
registry on first use); skipped, saying so, on a machine without Node.js."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).parent / "js"
GRAPHS = Path(__file__).parent / "graphs" / "langgraph.json"


def _installed_version() -> str | None:
    manifest = JS / "node_modules" / "@langchain" / "langgraph-sdk" / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed: the JS SDK cannot run here")
    wanted = json.loads((JS / "package.json").read_text())["dependencies"]["@langchain/langgraph-sdk"]
    if _installed_version() != wanted:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True, timeout=300)
    return node


@pytest.fixture(scope="module")
def graphs_server(server_factory):
    return server_factory("--langgraph-config", str(GRAPHS))


def test_the_js_sdk_drives_the_users_graphs(node, graphs_server):
    done = subprocess.run([node, "sdk_flow.mjs", graphs_server.url], cwd=JS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)

    assert {"agent", "approval", "nested", "notes", "progress", "tool_agent"} <= set(seen["graphs"])
    assert seen["approvalSchema"] == ["approved", "draft", "published", "topic"]
    assert seen["madeAssistant"] == {"graph_id": "approval", "name": "js reviewer", "version": 1}
    assert seen["countedApproval"] == 2

    assert seen["agentFirstEvent"] == "metadata"
    assert seen["agentFinal"] == [["human", "what is the weather in Paris"], ["ai", ""], ["tool", "sunny in Paris"],
                                  ["ai", "The weather: sunny in Paris"]]
    assert seen["agentUpdates"] == [["agent"], ["tools"], ["agent"]]
    assert seen["agentTokens"] == "The weather: sunny in Paris"
    assert seen["agentState"] == {"next": [], "last": "The weather: sunny in Paris"}
    assert seen["historyLength"] >= 5 and seen["threadStatus"] == "idle"

    assert seen["interrupt"] == [{"question": "Publish this draft?", "draft": "A post about cats"}]
    assert seen["interruptedStatus"] == "interrupted"
    assert seen["published"] == "A post about cats"

    assert seen["custom"] == [{"progress": 1, "of": 2}, {"progress": 2, "of": 2}]
    assert seen["joined"] == {"steps": 1, "done": 1} and seen["runs"] == ["success"]
    assert seen["threadStream"] == [{"run_id": seen["startedRun"], "attempt": 1},
                                    {"status": "run_done", "run_id": seen["startedRun"]}]
    assert seen["pruned"] == {"pruned_count": 1}

    assert seen["storeGet"] == {"text": "hello"}
    assert seen["storeSearch"] == ["first"]
    assert seen["storeNamespaces"] == [["js", "notes"]]
    assert seen["storeAfterDelete"] is None
    assert seen["cronFound"] is True and seen["cronAfterDelete"] is False
    assert seen["missingAssistant"] == 404
