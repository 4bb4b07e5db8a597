"""Where no sandbox can be set up, code_interpreter is refused with a clear 400 when an
assistant or a run asks for it (and the startup log says why): never run unsandboxed,
never accepted and ignored."""

from __future__ import annotations

import httpx

from v1_checks import assert_error


def test_refused_without_a_sandbox(server_factory):
    # No bubblewrap (nor any other tool) on this server's PATH.
    server = server_factory(env={"PATH": "/nonexistent"})
    with httpx.Client(base_url=server.v1, timeout=30) as http:
        r = http.post("/assistants", json={"model": "m", "tools": [{"type": "code_interpreter"}]})
        error = assert_error(r, 400, param="tools", code="unsupported_tool")
        assert "code_interpreter" in error["message"] and "bwrap" in error["message"]
        plain = http.post("/assistants", json={"model": "m"}).json()
        thread = http.post("/threads", json={}).json()
        r = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": plain["id"], "tools": [{"type": "code_interpreter"}]})
        assert_error(r, 400, param="tools", code="unsupported_tool")
        assert http.get(f"/threads/{thread['id']}/runs").json()["data"] == []
    assert "code_interpreter is off" in server.log()
