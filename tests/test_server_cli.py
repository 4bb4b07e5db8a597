"""`threadloom serve` / `threadloom migrate` as a user runs them: flags and their
THREADLOOM_* variables, API keys, health endpoints, data that outlives a restart, and
two servers sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from conftest import free_port, stop, wait_http
from conftest import test_database_url as database_under_test
from openapi_schemas import assert_schema
from v1_checks import assert_error, count_rows

BETA = {"OpenAI-Beta": "assistants=v2"}


def clean_env(**extra: str) -> dict:
    """The environment without any THREADLOOM_* setting of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLOOM_")}
    env.update(extra)
    return env


class Process:
    def __init__(self, cmd: list[str], env: dict, cwd: Path, url: str):
        self.url = url
        self.log_path = cwd / f"serve-{url.rsplit(':', 1)[1]}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def wait_ready(self) -> "Process":
        try:
            wait_http(self.url + "/healthz", self.proc)
        except RuntimeError:
            stop(self.proc)
            raise RuntimeError(self.log_path.read_text(errors="replace"))
        return self


@pytest.fixture
def launch(tmp_path):
    """Start `threadloom <command> ARGS` with exactly the given environment; without
    `port`, on a free port given as --port."""
    started: list[Process] = []

    def run(*args: str, env: dict | None = None, port: int | None = None, wait: bool = True) -> Process:
        env = env if env is not None else clean_env()
        if port is None:
            port = free_port()
            args = (*args, "--port", str(port))
        cmd = [sys.executable, "-m", "threadloom.cli", *args]
        process = Process(cmd, env, tmp_path, f"http://127.0.0.1:{port}")
        started.append(process)
        return process.wait_ready() if wait else process

    yield run
    for process in started:
        stop(process.proc)


def migrate(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "threadloom.cli", "migrate", *args],
        env=env if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def is_postgres() -> bool:
    return (database_under_test() or "").startswith("postgres")


# -- API keys ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(server_factory, upstream_process):
    return server_factory("--upstream", upstream_process.url, "--api-key", "sk-first-key-1234", "--api-key", "sk-second-key-5678")


def test_every_given_key_is_accepted(keyed):
    for key in ("sk-first-key-1234", "sk-second-key-5678"):
        with OpenAI(base_url=keyed.v1, api_key=key, max_retries=0) as client:
            assistant = client.beta.assistants.create(model="gpt-4o", name=key)
            assert client.beta.assistants.retrieve(assistant.id).name == key
            assert assistant.id in [a.id for a in client.beta.assistants.list()]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-wrong-key-0000"},
        {"Authorization": "Bearer"},
        {"Authorization": "sk-first-key-1234"},  # no Bearer scheme
        {"Authorization": "Bearer sk-first-key-1234x"},
        {"Authorization": "Bearer sk-first-key-1234, sk-second-key-5678"},
    ],
    ids=["none", "wrong", "empty", "no-scheme", "longer", "two"],
)
def test_a_request_without_a_good_key_is_a_401_in_openais_shape(keyed, headers):
    for method, path in (("GET", "/assistants"), ("POST", "/threads"), ("GET", "/threads/thread_x"), ("GET", "/no_such_route")):
        response = httpx.request(method, keyed.v1 + path, headers={**BETA, **headers})
        error = assert_error(response, 401, param=None, code="invalid_api_key")
        assert "sk-first-key-1234" not in error["message"]  # never echo a real key back


def test_nothing_is_written_without_a_good_key(keyed):
    before = count_rows(keyed.database, "assistants")
    response = httpx.post(keyed.v1 + "/assistants", json={"model": "gpt-4o"}, headers={**BETA, "Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert count_rows(keyed.database, "assistants") == before


def test_the_sdk_sees_an_authentication_error(keyed):
    with OpenAI(base_url=keyed.v1, api_key="sk-wrong-key-0000", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as err:
            client.beta.assistants.list()
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"


def test_health_needs_no_key(keyed):
    for path in ("/healthz", "/v1/health"):
        response = httpx.get(keyed.url + path)
        assert response.status_code == 200, path
        assert response.json() == {"status": "ok"}


def test_without_keys_any_key_or_none_is_accepted(server):
    for headers in ({}, {"Authorization": "Bearer anything"}, {"Authorization": "Bearer"}):
        response = httpx.post(server.v1 + "/threads", headers={**BETA, **headers})
        assert response.status_code == 200, response.text
        assert_schema(response.json(), "ThreadObject")
    for path in ("/healthz", "/v1/health"):
        assert httpx.get(server.url + path).status_code == 200


# -- settings from the environment ------------------------------------------------------------


def test_every_setting_from_threadloom_variables(launch, tmp_path, upstream):
    upstream.script({"text": "from the environment"})
    port = free_port()
    database = f"sqlite:///{tmp_path / 'from-env.db'}"
    env = clean_env(
        THREADLOOM_HOST="127.0.0.1",
        THREADLOOM_PORT=str(port),
        THREADLOOM_DATABASE=database,
        THREADLOOM_API_KEYS="env-key-one,env-key-two",
        THREADLOOM_UPSTREAM=upstream.url,
        THREADLOOM_LOG_LEVEL="warning",
    )
    server = launch("serve", env=env, port=port)
    assert httpx.get(server.url + "/v1/assistants", headers=BETA).status_code == 401
    for key in ("env-key-one", "env-key-two"):
        with OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0) as client:
            client.beta.assistants.list()
    with OpenAI(base_url=server.url + "/v1", api_key="env-key-two", max_retries=0) as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
        assert run.status == "completed"  # THREADLOOM_UPSTREAM routed the model
        assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "from the environment"
    assert count_rows(database, "assistants", "id = $1", assistant.id) == 1  # THREADLOOM_DATABASE


def test_flags_win_over_variables_and_the_default_database(launch, tmp_path):
    port = free_port()
    env = clean_env(THREADLOOM_PORT=str(free_port()), THREADLOOM_API_KEYS="from-env")
    server = launch("serve", "--port", str(port), "--api-key", "from-flag", env=env, port=port)
    assert httpx.get(server.url + "/v1/assistants", headers={**BETA, "Authorization": "Bearer from-env"}).status_code == 401
    response = httpx.post(server.url + "/v1/assistants", json={"model": "gpt-4o"}, headers={**BETA, "Authorization": "Bearer from-flag"})
    assert response.status_code == 200
    # No --database and no THREADLOOM_DATABASE: ./threadloom.db in the working directory.
    assert count_rows(f"sqlite:///{tmp_path / 'threadloom.db'}", "assistants", "id = $1", response.json()["id"]) == 1


@pytest.mark.parametrize(
    "args,env,mentions",
    [
        (["serve", "--port", "eighty"], {}, "--port"),
        (["serve", "--route", "no-equals-sign"], {}, "route"),
        (["serve", "--route", "*=teleport"], {}, "teleport"),
        (["serve"], {"THREADLOOM_PORT": "eighty"}, "--port"),
        (["serve"], {"THREADLOOM_RUN_TTL": "ten minutes"}, "--run-ttl"),
        (["migrate"], {"THREADLOOM_UPSTREAM_TIMEOUT": "soon"}, "--upstream-timeout"),
    ],
)
def test_bad_settings_are_a_usage_error_not_a_traceback(tmp_path, args, env, mentions):
    result = subprocess.run(
        [sys.executable, "-m", "threadloom.cli", *args, "--database", f"sqlite:///{tmp_path / 'x.db'}"],
        env=clean_env(**env), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, (args, env, result.stderr)
    assert "usage:" in result.stderr and mentions in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


# -- the database outlives the process -------------------------------------------------------


def test_data_survives_a_restart(server_factory, upstream_process):
    first = server_factory("--upstream", upstream_process.url)
    with OpenAI(base_url=first.v1, api_key="k", max_retries=0) as client:
        assistant = client.beta.assistants.create(model="gpt-4o", name="durable", metadata={"k": "v"})
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "remember me"}], metadata={"t": "1"})
        message = client.beta.threads.messages.create(thread.id, role="assistant", content="I will")
        before = (
            httpx.get(f"{first.v1}/assistants/{assistant.id}").json(),
            httpx.get(f"{first.v1}/threads/{thread.id}").json(),
            httpx.get(f"{first.v1}/threads/{thread.id}/messages", params={"order": "asc"}).json(),
        )
    stop(first.proc)

    second = server_factory("--upstream", upstream_process.url, database=first.database)
    after = (
        httpx.get(f"{second.v1}/assistants/{assistant.id}").json(),
        httpx.get(f"{second.v1}/threads/{thread.id}").json(),
        httpx.get(f"{second.v1}/threads/{thread.id}/messages", params={"order": "asc"}).json(),
    )
    assert after == before
    assert after[2]["last_id"] == message.id
    # ... and the restarted server keeps appending in order.
    with OpenAI(base_url=second.v1, api_key="k", max_retries=0) as client:
        newer = client.beta.threads.messages.create(thread.id, role="user", content="still here")
        assert [m.id for m in client.beta.threads.messages.list(thread.id, limit=1).data] == [newer.id]
        assert [a.id for a in client.beta.assistants.list()][-1] == assistant.id


# -- migrations -------------------------------------------------------------------------------


def test_migrate_creates_the_schema_and_can_run_again(server_factory, launch):
    database = server_factory.new_database()
    result = migrate("--database", database, cwd=server_factory.tmp_dir)
    assert result.returncode == 0, result.stderr
    assert count_rows(database, "alembic_version") == 1
    for table in ("assistants", "threads", "messages", "runs", "run_steps"):
        assert count_rows(database, table) == 0
    # Again, on an up-to-date database, named by the variable this time.
    result = migrate(env=clean_env(THREADLOOM_DATABASE=database), cwd=server_factory.tmp_dir)
    assert result.returncode == 0, result.stderr
    assert count_rows(database, "alembic_version") == 1
    # A server starts on the migrated database.
    server = launch("serve", "--database", database)
    assert httpx.post(server.url + "/v1/threads", headers=BETA).status_code == 200
    assert count_rows(database, "threads") == 1


def test_the_migrated_schema_is_the_one_the_code_declares(server_factory):
    """The migrations and store/tables.py describe the same tables, columns and indexes
    (alembic's autogenerate comparison finds nothing to add or drop)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from threadloom.store.database import Database
    from threadloom.store.tables import metadata

    database = server_factory.new_database()
    assert migrate("--database", database, cwd=server_factory.tmp_dir).returncode == 0

    async def differences():
        db = Database(database)
        try:
            return await db.query(lambda conn: compare_metadata(MigrationContext.configure(conn), metadata))
        finally:
            await db.dispose()

    assert asyncio.run(differences()) == []


def test_migrate_on_an_unreachable_database_fails_loudly(tmp_path):
    result = migrate("--database", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")
    assert result.returncode != 0


# -- PostgreSQL: several servers, one database ---------------------------------------------------


@pytest.mark.skipif(not is_postgres(), reason="needs THREADLOOM_TEST_DATABASE=postgresql://...")
def test_two_servers_on_one_postgresql_database(server_factory, launch, upstream_process):
    database = server_factory.new_database()
    # Started together: both migrate the empty database at once.
    servers = [launch("serve", "--database", database, "--upstream", upstream_process.url, wait=False) for _ in range(2)]
    a, b = (server.wait_ready() for server in servers)
    with OpenAI(base_url=a.url + "/v1", api_key="k", max_retries=0) as ca, OpenAI(base_url=b.url + "/v1", api_key="k", max_retries=0) as cb:
        assistant = ca.beta.assistants.create(model="gpt-4o", name="shared")
        assert cb.beta.assistants.retrieve(assistant.id).name == "shared"
        thread = cb.beta.threads.create(messages=[{"role": "user", "content": "one"}])
        ids = [m.id for m in cb.beta.threads.messages.list(thread.id)]
        for i, client in enumerate((ca, cb, ca, cb)):
            ids.append(client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id)
        for client in (ca, cb):
            assert [m.id for m in client.beta.threads.messages.list(thread.id, order="asc", limit=2)] == ids
        cb.beta.assistants.update(assistant.id, name="renamed")
        assert ca.beta.assistants.retrieve(assistant.id).name == "renamed"
        ca.beta.threads.delete(thread.id)
        with pytest.raises(openai.NotFoundError):
            cb.beta.threads.retrieve(thread.id)
    assert count_rows(database, "alembic_version") == 1
