"""A first end-to-end check: a run through the official SDK against the scripted model."""

from openapi_schemas import assert_schema


def test_run_completes_with_the_models_text(client, http, upstream):
    upstream.script({"text": "Bonjour tout le monde"})
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Answer in French.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    assert messages.data[0].content[0].text.value == "Bonjour tout le monde"
    sent = upstream.requests()[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert sent["messages"][-1] == {"role": "user", "content": "hello"}
    assert_schema(http.get(f"/threads/{thread.id}/runs/{run.id}").json(), "RunObject")
