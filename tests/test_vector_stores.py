"""/v1/vector_stores, their files, file batches and search, through the official SDK, with
real documents (PDF, DOCX, PPTX, Markdown, code) built in memory and the real default
embedder of the server."""

from __future__ import annotations

import io
import time

import openai
import pytest

from documents import corrupt_pdf, make_docx, make_pdf, make_pptx
from openapi_schemas import assert_schema
from v1_checks import assert_error, assert_not_found, assert_page, count_rows, create_store, wait_store

HANDBOOK = (
    "# Employee handbook\n\n"
    "## Leave\n\nEvery employee receives 25 days of paid vacation per calendar year. "
    "Unused vacation days carry over until March.\n\n"
    "## Equipment\n\nLaptops are replaced every three years by the IT desk.\n"
)
CAFETERIA = "The cafeteria on the second floor serves lunch from noon to two. Soup is free on Fridays."
CODE = "def parse_invoice(path):\n    '''Read an invoice PDF and return its total amount in euros.'''\n    return 0\n"


def upload(client, name: str, data: bytes | str, purpose: str = "assistants"):
    if isinstance(data, str):
        data = data.encode()
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


@pytest.fixture(scope="module")
def corpus(server):
    """One store holding five documents of different types."""
    from openai import OpenAI

    with OpenAI(base_url=server.v1, api_key="k", max_retries=0, timeout=60) as client:
        files = {
            "handbook.md": upload(client, "handbook.md", HANDBOOK),
            "cafeteria.pdf": upload(client, "cafeteria.pdf", make_pdf([CAFETERIA, "Opening hours may change in August."])),
            "travel.docx": upload(client, "travel.docx", make_docx(
                ["Travel policy", "Train tickets are booked through the travel portal."],
                table=[["Class", "Allowed"], ["First", "no"], ["Second", "yes"]])),
            "security.pptx": upload(client, "security.pptx", make_pptx(["Security training", "Badges must be worn visibly at all times."])),
            "invoices.py": upload(client, "invoices.py", CODE),
        }
        store = create_store(client, name="company", file_ids=[f.id for f in files.values()])
        yield store, files


def test_create_and_poll_ingests_every_type(client, http, corpus):
    store, files = corpus
    raw = http.get(f"/vector_stores/{store.id}").json()
    assert_schema(raw, "VectorStoreObject")
    assert raw["status"] == "completed" and raw["name"] == "company"
    assert raw["file_counts"] == {"in_progress": 0, "completed": 5, "failed": 0, "cancelled": 0, "total": 5}
    assert raw["usage_bytes"] > 0
    page = http.get(f"/vector_stores/{store.id}/files", params={"limit": 100}).json()
    ids = assert_page(page, "ListVectorStoreFilesResponse", "VectorStoreFileObject")
    assert sorted(ids) == sorted(f.id for f in files.values())
    for item in page["data"]:
        assert item["status"] == "completed" and item["last_error"] is None and item["usage_bytes"] > 0
        assert item["chunking_strategy"] == {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
    # The parsed text of each type, as the store holds it.
    def text_of(name):
        content = http.get(f"/vector_stores/{store.id}/files/{files[name].id}/content").json()
        assert_schema(content, "VectorStoreFileContentResponse")
        return " ".join(part["text"] for part in content["data"])

    assert "25 days of paid vacation" in text_of("handbook.md")
    assert "Soup is free on Fridays" in text_of("cafeteria.pdf") and "August" in text_of("cafeteria.pdf")
    assert "travel portal" in text_of("travel.docx") and "Second" in text_of("travel.docx")
    assert "Badges must be worn" in text_of("security.pptx")
    assert "parse_invoice" in text_of("invoices.py")


@pytest.mark.parametrize("query, expected", [
    ("How many vacation days do I get?", "handbook.md"),
    ("when is lunch served", "cafeteria.pdf"),
    ("booking train tickets", "travel.docx"),
    ("badge rules", "security.pptx"),
    ("function that reads the invoice total", "invoices.py"),
])
def test_search_finds_the_right_document(client, http, corpus, query, expected):
    store, files = corpus
    raw = http.post(f"/vector_stores/{store.id}/search", json={"query": query, "max_num_results": 3}).json()
    assert_schema(raw, "VectorStoreSearchResultsPage")
    assert raw["search_query"] == [query] and raw["has_more"] is False and raw["next_page"] is None
    assert 1 <= len(raw["data"]) <= 3
    top = raw["data"][0]
    assert top["filename"] == expected and top["file_id"] == files[expected].id
    scores = [r["score"] for r in raw["data"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert top["content"][0]["type"] == "text" and top["content"][0]["text"]


def test_search_options(client, corpus):
    store, files = corpus
    page = client.vector_stores.search(store.id, query=["vacation days", "cafeteria lunch"], max_num_results=2)
    assert {r.filename for r in page.data} == {"handbook.md", "cafeteria.pdf"}
    assert page.search_query == ["vacation days", "cafeteria lunch"]
    none = client.vector_stores.search(store.id, query="vacation", ranking_options={"score_threshold": 1.0})
    assert list(none) == []
    rewritten = client.vector_stores.search(store.id, query="How many vacation days do I get?", rewrite_query=True)
    assert rewritten.search_query == ["vacation days"]
    assert next(iter(rewritten)).filename == "handbook.md"
    semantic = client.vector_stores.search(store.id, query="paid leave", ranking_options={"ranker": "none"}, max_num_results=1)
    assert next(iter(semantic)).filename == "handbook.md"


def test_attribute_filters(client, http):
    a = upload(client, "a.md", "Quarterly revenue grew in the north region.")
    b = upload(client, "b.md", "Quarterly revenue fell in the south region.")
    store = client.vector_stores.create(name="filtered")
    client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=a.id, attributes={"region": "north", "year": 2025, "final": True})
    vs_file = client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=b.id, attributes={"region": "south", "year": 2026})
    assert vs_file.attributes == {"region": "south", "year": 2026}

    def names(filters):
        page = http.post(f"/vector_stores/{store.id}/search", json={"query": "quarterly revenue", "filters": filters}).json()
        return sorted({r["filename"] for r in page["data"]})

    assert names({"type": "eq", "key": "region", "value": "north"}) == ["a.md"]
    assert names({"type": "gte", "key": "year", "value": 2026}) == ["b.md"]
    assert names({"type": "in", "key": "region", "value": ["north", "west"]}) == ["a.md"]
    assert names({"type": "or", "filters": [{"type": "eq", "key": "final", "value": True}, {"type": "lt", "key": "year", "value": 2000}]}) == ["a.md"]
    assert names({"type": "and", "filters": [{"type": "ne", "key": "region", "value": "north"}, {"type": "nin", "key": "year", "value": [2025]}]}) == ["b.md"]
    # Attributes can be changed; the search follows.
    updated = client.vector_stores.files.update(vector_store_id=store.id, file_id=a.id, attributes={"region": "south"})
    assert updated.attributes == {"region": "south"}
    assert names({"type": "eq", "key": "region", "value": "south"}) == ["a.md", "b.md"]
    bad = http.post(f"/vector_stores/{store.id}/search", json={"query": "x", "filters": {"type": "like", "key": "a", "value": "b"}})
    assert_error(bad, 400)
    too_many = http.post(f"/vector_stores/{store.id}/files/{a.id}", json={"attributes": {f"k{i}": i for i in range(17)}})
    assert_error(too_many, 400, param="attributes", code="object_above_max_properties")


def test_failures_are_per_file(client, http):
    good = upload(client, "good.md", HANDBOOK)
    broken = upload(client, "broken.pdf", corrupt_pdf())
    binary = upload(client, "tool.exe", b"MZ\x90\x00" + bytes(range(256)) * 4)
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=client.vector_stores.create(name="mixed").id, file_ids=[good.id, broken.id, binary.id], poll_interval_ms=100
    )
    raw = http.get(f"/vector_stores/{batch.vector_store_id}/file_batches/{batch.id}").json()
    assert_schema(raw, "VectorStoreFileBatchObject")
    assert raw["object"] == "vector_store.files_batch" and raw["status"] == "completed"
    assert raw["file_counts"] == {"in_progress": 0, "completed": 1, "failed": 2, "cancelled": 0, "total": 3}
    errors = {f.id: f.last_error for f in client.vector_stores.files.list(vector_store_id=batch.vector_store_id)}
    assert errors[good.id] is None
    assert errors[broken.id].code == "invalid_file" and "broken.pdf" in errors[broken.id].message
    assert errors[binary.id].code == "unsupported_file"
    failed = client.vector_stores.file_batches.list_files(vector_store_id=batch.vector_store_id, batch_id=batch.id, filter="failed")
    assert sorted(f.id for f in failed) == sorted([broken.id, binary.id])
    assert_error(http.get(f"/vector_stores/{batch.vector_store_id}/files", params={"filter": "done"}), 400, param="filter")


def test_upload_and_poll_batch_and_search_it(client):
    store = client.vector_stores.create(name="uploaded")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id,
        files=[("handbook.md", io.BytesIO(HANDBOOK.encode())), ("cafe.txt", io.BytesIO(CAFETERIA.encode()))],
        poll_interval_ms=100,
    )
    assert batch.status == "completed" and batch.file_counts.completed == 2
    hit = next(iter(client.vector_stores.search(store.id, query="free soup", max_num_results=1)))
    assert hit.filename == "cafe.txt"


def test_static_chunking_and_its_bounds(client, http):
    long_text = " ".join(f"Paragraph {i} is about topic number {i}." for i in range(400))
    f = upload(client, "long.txt", long_text)
    store = client.vector_stores.create(name="chunks")
    vs_file = client.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=f.id,
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}},
    )
    assert vs_file.status == "completed"
    assert vs_file.chunking_strategy.static.max_chunk_size_tokens == 100
    chunks = http.get(f"/vector_stores/{store.id}/files/{f.id}/content").json()["data"]
    assert len(chunks) > 20
    for bad, param in [
        ({"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}}, "chunking_strategy.static.max_chunk_size_tokens"),
        ({"type": "static", "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}}, "chunking_strategy.static.max_chunk_size_tokens"),
        ({"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}}, "chunking_strategy.static.chunk_overlap_tokens"),
    ]:
        r = http.post(f"/vector_stores/{store.id}/files", json={"file_id": f.id, "chunking_strategy": bad})
        assert_error(r, 400, param=param)


def test_store_crud_and_expiry_fields(client, http):
    store = client.vector_stores.create(name="crud", metadata={"team": "a"}, expires_after={"anchor": "last_active_at", "days": 2})
    assert store.expires_at == store.last_active_at + 2 * 86400 and store.status == "completed"
    assert store.file_counts.total == 0 and store.usage_bytes == 0
    updated = client.vector_stores.update(store.id, name="renamed", metadata={"team": "b"}, expires_after=None)
    assert updated.name == "renamed" and updated.metadata == {"team": "b"} and updated.expires_at is None
    page = http.get("/vector_stores", params={"limit": 100}).json()
    assert store.id in assert_page(page, "ListVectorStoresResponse", "VectorStoreObject")
    deleted = http.delete(f"/vector_stores/{store.id}").json()
    assert_schema(deleted, "DeleteVectorStoreResponse")
    assert deleted == {"id": store.id, "object": "vector_store.deleted", "deleted": True}
    assert_not_found(http.get(f"/vector_stores/{store.id}"), "vector store", store.id)
    assert_not_found(http.post(f"/vector_stores/{store.id}/search", json={"query": "x"}), "vector store", store.id)
    assert_error(http.post("/vector_stores", json={"expires_after": {"anchor": "created_at", "days": 1}}), 400, param="expires_after.anchor")
    assert_error(http.post("/vector_stores", json={"expires_after": {"anchor": "last_active_at", "days": 366}}), 400, param="expires_after.days")


def test_ids_that_name_nothing(client, http):
    f = upload(client, "x.md", "x")
    assert_not_found(http.post("/vector_stores", json={"file_ids": [f.id, "file-nope"]}), "file", "file-nope")
    store = client.vector_stores.create(name="ids")
    assert_not_found(http.post(f"/vector_stores/{store.id}/files", json={"file_id": "file-nope"}), "file", "file-nope")
    assert_not_found(http.post(f"/vector_stores/{store.id}/file_batches", json={"file_ids": ["file-nope"]}), "file", "file-nope")
    assert_not_found(http.get(f"/vector_stores/{store.id}/files/file-nope"), "file", "file-nope")
    assert_not_found(http.get(f"/vector_stores/{store.id}/file_batches/vsfb_nope"), "file batch", "vsfb_nope")
    assert_not_found(http.post("/vector_stores/vs_nope/files", json={"file_id": f.id}), "vector store", "vs_nope")
    assert_error(http.post(f"/vector_stores/{store.id}/file_batches", json={"file_ids": [f.id], "files": [{"file_id": f.id}]}), 400)
    batch_file = upload(client, "b.jsonl", '{"a": 1}\n', purpose="batch")
    assert_error(http.post(f"/vector_stores/{store.id}/files", json={"file_id": batch_file.id}), 400, param="file_id")
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_deleting_a_file_removes_it_from_every_store(client, database_url):
    f = upload(client, "secret.md", "The launch code word is PELICAN.")
    stores = [create_store(client, name=f"s{i}", file_ids=[f.id]) for i in range(2)]
    for store in stores:
        assert next(iter(client.vector_stores.search(store.id, query="launch code word"))).file_id == f.id
    client.files.delete(f.id)
    for store in stores:
        assert list(client.vector_stores.search(store.id, query="launch code word")) == []
        assert client.vector_stores.retrieve(store.id).file_counts.total == 0
    assert count_rows(database_url, "vector_store_chunks", "file_id = $1", f.id) == 0


def test_deleting_a_vector_store_file_keeps_the_file(client):
    f = upload(client, "keep.md", "Keep me.")
    store = create_store(client, name="k", file_ids=[f.id])
    deleted = client.vector_stores.files.delete(vector_store_id=store.id, file_id=f.id)
    assert deleted.deleted is True
    assert client.files.retrieve(f.id).id == f.id
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_cancel_a_batch(client, http):
    big = " ".join(f"Sentence {i} of a long document about nothing in particular." for i in range(6000))
    files = [upload(client, f"big-{i}.txt", big) for i in range(3)]
    store = client.vector_stores.create(name="cancel")
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[f.id for f in files])
    cancelled = client.vector_stores.file_batches.cancel(vector_store_id=store.id, batch_id=batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.file_counts.in_progress == 0
    assert cancelled.file_counts.cancelled + cancelled.file_counts.completed == 3
    assert_error(http.post(f"/vector_stores/{store.id}/file_batches/{batch.id}/cancel"), 400)
    wait_store(client, store.id)
    statuses = {f.status for f in client.vector_stores.files.list(vector_store_id=store.id)}
    assert statuses <= {"cancelled", "completed"}


def test_deleting_a_store_mid_ingestion(client, database_url):
    big = " ".join(f"Line {i}: the quick brown fox jumps over the lazy dog." for i in range(8000))
    f = upload(client, "big.txt", big)
    store = client.vector_stores.create(name="gone", file_ids=[f.id])
    client.vector_stores.delete(store.id)
    time.sleep(3)  # ingestion of the file, had it gone on, would have written its chunks by now
    assert count_rows(database_url, "vector_store_chunks", "vector_store_id = $1", store.id) == 0
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_unfinished_ingestion_resumes_after_a_restart(server_factory):
    from openai import OpenAI

    from conftest import stop

    database = server_factory.new_database()
    first = server_factory(database=database)
    big = " ".join(f"Line {i}: notes about the quarterly planning meeting." for i in range(8000))
    with OpenAI(base_url=first.v1, api_key="k", max_retries=0, timeout=60) as client:
        f = upload(client, "minutes.txt", big + " The budget owner is Ada Lovelace.")
        store = client.vector_stores.create(name="restart", file_ids=[f.id])
    stop(first.proc)  # stops mid-ingestion: the file is handed back to the queue
    second = server_factory(database=database)
    with OpenAI(base_url=second.v1, api_key="k", max_retries=0, timeout=60) as client:
        done = wait_store(client, store.id, timeout=120)
        assert done.file_counts.completed == 1, done.file_counts
        hit = next(iter(client.vector_stores.search(store.id, query="who owns the budget", max_num_results=1)))
        assert "Ada Lovelace" in hit.content[0].text


@pytest.fixture
def database_url(server):
    return server.database


def test_a_store_is_searched_only_with_its_embedding_model(server_factory):
    from openai import OpenAI

    from conftest import stop

    database = server_factory.new_database()
    local = server_factory(database=database)
    with OpenAI(base_url=local.v1, api_key="k", max_retries=0, timeout=60) as client:
        f = upload(client, "a.md", "apples and pears")
        store = create_store(client, name="minilm", file_ids=[f.id])
    stop(local.proc)
    other = server_factory("--embeddings", "http://127.0.0.1:9/v1", "--embeddings-model", "another-model", database=database)
    with OpenAI(base_url=other.v1, api_key="k", max_retries=0, timeout=60) as client:
        with pytest.raises(openai.BadRequestError) as err:
            client.vector_stores.search(store.id, query="pears")
        assert err.value.body["code"] == "embedding_model_mismatch"
        assert "all-MiniLM-L6-v2" in err.value.message and "another-model" in err.value.message
