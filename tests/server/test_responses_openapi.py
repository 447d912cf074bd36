"""What ``/v1/responses`` returns, checked against OpenAI's published OpenAPI schemas (the vendored
spec of ``tests/data/openai-openapi/``): the Response object, every stream event, the stored
Response read back, on routes backed by each upstream wire format."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.providers.helpers import sse_data
from tests.server.conftest import ROUTES
from tests.server.test_openapi_conformance import validate  # noqa: F401 - the fixture

TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}
BODIES: list[dict[str, Any]] = [
    {"input": "hi", "instructions": "Be brief.", "metadata": {"k": "v"}},
    {
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [TOOL],
        "tool_choice": "required",
    },
    {"input": "hi", "max_output_tokens": 2},
]


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url, content=orjson.dumps(body), headers={"content-type": "application/json"}, timeout=10)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("model", ROUTES)
def test_response_matches_schema(gateway_url: str, validate: Any, model: str, body: dict[str, Any]) -> None:  # noqa: F811
    """A Response (text, tool call, incomplete), and the same read back by GET, match ``Response``."""
    r = _post(f"{gateway_url}/v1/responses", {"model": model, **body})
    assert r.status_code == 200, r.text
    validate(r.json(), "Response")
    stored = httpx.get(f"{gateway_url}/v1/responses/{r.json()['id']}", timeout=10)
    assert stored.status_code == 200
    assert stored.json() == r.json()


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("model", ROUTES)
def test_stream_events_match_schema(gateway_url: str, validate: Any, model: str, body: dict[str, Any]) -> None:  # noqa: F811
    """Every event of a Responses stream matches ``ResponseStreamEvent``."""
    r = _post(f"{gateway_url}/v1/responses", {"model": model, "stream": True, **body})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    frames = sse_data(r.content)
    assert len(frames) > 4
    for frame in frames:
        validate(orjson.loads(frame), "ResponseStreamEvent")


def test_failure_events_match_schema(gateway_url: str, validate: Any) -> None:  # noqa: F811
    """A stream cut mid-way: its ``error`` and ``response.failed`` events match ``ResponseStreamEvent``."""
    r = httpx.post(
        f"{gateway_url}/v1/responses",
        json={"model": "mock", "input": "hi", "stream": True},
        headers={"x-mock-fault": "cut_after=2"},
        timeout=10,
    )
    frames = [orjson.loads(f) for f in sse_data(r.content)]
    assert [f["type"] for f in frames[-2:]] == ["error", "response.failed"]
    for frame in frames:
        validate(frame, "ResponseStreamEvent")
