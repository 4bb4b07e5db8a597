"""/v1/files through the official SDK and raw HTTP: upload, read, list, download, delete,
the purposes' rules and the size limit."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

from openapi_schemas import assert_schema
from v1_checks import assert_error, assert_not_found, assert_page, assert_recent


def upload(client, name: str, data: bytes, purpose: str = "assistants"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


def test_upload_read_list_download_delete(client, http):
    data = "# Handbook\n\nEmployees get 25 vacation days.\n".encode() * 50
    f = upload(client, "handbook.md", data)
    raw = http.get(f"/files/{f.id}").json()
    assert_schema(raw, "OpenAIFile")
    assert raw["id"].startswith("file-") and raw["object"] == "file"
    assert raw["bytes"] == len(data) and raw["filename"] == "handbook.md" and raw["purpose"] == "assistants"
    assert raw["status"] == "processed" and "expires_at" not in raw
    assert_recent(raw["created_at"])

    assert client.files.content(f.id).read() == data
    page = http.get("/files").json()
    assert f.id in assert_page(page, "ListFilesResponse", "OpenAIFile")

    deleted = http.delete(f"/files/{f.id}").json()
    assert_schema(deleted, "DeleteFileResponse")
    assert deleted == {"id": f.id, "object": "file", "deleted": True}
    assert_not_found(http.get(f"/files/{f.id}"), "file", f.id)
    assert_not_found(http.get(f"/files/{f.id}/content"), "file", f.id)
    assert_not_found(http.delete(f"/files/{f.id}"), "file", f.id)


def test_large_file_round_trips_in_parts(client):
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: three parts in the store
    f = upload(client, "blob.bin", data, purpose="user_data")
    assert f.bytes == len(data)
    assert client.files.content(f.id).read() == data


def test_list_filters_by_purpose_and_pages_with_after(client):
    ours = [upload(client, f"batch-{i}.jsonl", b'{"a": 1}\n', purpose="batch").id for i in range(3)]
    listed = [f.id for f in client.files.list(purpose="batch", order="asc", limit=2)]  # auto-pages with after
    assert [i for i in listed if i in ours] == ours
    assert all(client.files.retrieve(i).purpose == "batch" for i in listed)
    # Batch files expire after 30 days unless told otherwise, as OpenAI's do.
    assert client.files.retrieve(ours[0]).expires_at == client.files.retrieve(ours[0]).created_at + 30 * 86400


def test_expires_after(client):
    f = client.files.create(
        file=("notes.txt", io.BytesIO(b"hello")), purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert f.expires_at == f.created_at + 3600


def test_bad_uploads_are_refused_and_store_nothing(client, http):
    before = len(http.get("/files").json()["data"])
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, "empty.txt", b"")
    assert err.value.body["param"] == "file"
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, "x.txt", b"x", purpose="fine-tune")
    assert "jsonl" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, "x.txt", b"x", purpose="assistants_output")
    assert err.value.body["param"] == "purpose" and err.value.body["code"] == "invalid_value"
    assert_error(http.post("/files", data={"purpose": "assistants"}, files={"nope": ("a.txt", b"x")}), 400, param="nope")
    assert_error(http.post("/files", data={"purpose": "assistants"}), 400, param=None)
    assert_error(http.post("/files", json={"purpose": "assistants"}), 400, code="invalid_content_type")
    r = http.post("/files", data={"purpose": "assistants", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
                  files={"file": ("a.txt", b"x")})
    assert_error(r, 400, param="expires_after.seconds")
    assert len(http.get("/files").json()["data"]) == before


def test_size_limit_is_configurable(server_factory):
    small = server_factory("--max-file-size", "1000")
    with httpx.Client(base_url=small.v1, timeout=30) as http:
        ok = http.post("/files", data={"purpose": "assistants"}, files={"file": ("a.txt", b"x" * 1000)})
        assert ok.status_code == 200, ok.text
        big = http.post("/files", data={"purpose": "assistants"}, files={"file": ("b.txt", b"x" * 1001)})
        assert_error(big, 413, param="file", code="file_too_large")
        assert [f["filename"] for f in http.get("/files").json()["data"]] == ["a.txt"]


def test_unicode_filename_downloads(client, http):
    f = upload(client, "résumé – 2026.txt", "café".encode())
    r = http.get(f"/files/{f.id}/content")
    assert r.status_code == 200 and r.content == "café".encode()
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9" in r.headers["content-disposition"]
