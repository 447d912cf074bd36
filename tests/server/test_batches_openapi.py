"""What ``/v1/files`` and ``/v1/batches`` return, checked against OpenAI's published OpenAPI schemas
(the vendored spec of ``tests/data/openai-openapi/``): the File and Batch objects at each step,
both lists, a deletion, an error; and each output line against the Chat Completion schema."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest

from tests.polling import until
from tests.server.test_openapi_conformance import validate  # noqa: F401 - the fixture

LINES = b"".join(
    json.dumps(
        {
            "custom_id": f"c{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
        }
    ).encode()
    + b"\n"
    for i, model in enumerate(["mock", "mock-claude", "no-such-route"])
)


def test_files_and_batches_match_schema(gateway_url: str, validate: Any) -> None:  # noqa: F811
    """Every object of a batch's life matches ``OpenAIFile``, ``Batch``, ``ListFilesResponse``,
    ``ListBatchesResponse``, ``DeleteFileResponse`` and ``ErrorResponse``."""
    http = httpx.Client(base_url=gateway_url, timeout=10)
    uploaded = http.post("/v1/files", files={"file": ("in.jsonl", LINES)}, data={"purpose": "batch"})
    assert uploaded.status_code == 200, uploaded.text
    validate(uploaded.json(), "OpenAIFile")
    validate(http.get("/v1/files").json(), "ListFilesResponse")
    body = {"input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    created = http.post("/v1/batches", json=body)
    assert created.status_code == 200, created.text
    validate(created.json(), "Batch")
    batch_id = created.json()["id"]
    until(lambda: http.get(f"/v1/batches/{batch_id}").json()["status"] == "completed", 20, "the batch completes")
    done = http.get(f"/v1/batches/{batch_id}").json()
    validate(done, "Batch")
    validate(http.get("/v1/batches", params={"limit": 1}).json(), "ListBatchesResponse")
    output = http.get(f"/v1/files/{done['output_file_id']}")
    validate(output.json(), "OpenAIFile")
    for line in http.get(f"/v1/files/{done['output_file_id']}/content").content.splitlines():
        validate(json.loads(line)["response"]["body"], "CreateChatCompletionResponse")
    for line in http.get(f"/v1/files/{done['error_file_id']}/content").content.splitlines():
        validate(json.loads(line)["response"]["body"], "ErrorResponse")
    deleted = http.delete(f"/v1/files/{uploaded.json()['id']}")
    validate(deleted.json(), "DeleteFileResponse")
    validate(http.get(f"/v1/files/{uploaded.json()['id']}").json(), "ErrorResponse")


@pytest.mark.parametrize("ended", [False, True])
def test_a_failed_batch_matches_schema(gateway_url: str, validate: Any, ended: bool) -> None:  # noqa: F811
    """A batch that fails validation (its lines call another endpoint) matches ``Batch`` as just
    created and once failed, its errors included."""
    http = httpx.Client(base_url=gateway_url, timeout=10)
    uploaded = http.post("/v1/files", files={"file": ("in.jsonl", LINES)}, data={"purpose": "batch"}).json()
    body = {"input_file_id": uploaded["id"], "endpoint": "/v1/embeddings", "completion_window": "24h"}
    batch_id = http.post("/v1/batches", json=body).json()["id"]
    if ended:
        until(lambda: http.get(f"/v1/batches/{batch_id}").json()["status"] == "failed", 20, "the batch fails")
    validate(http.get(f"/v1/batches/{batch_id}").json(), "Batch")
