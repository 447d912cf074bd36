"""Bad input never gets a 500: each case gets a clear 4xx in the client's error format.

After every case the gateway must still serve a normal request, and no response may carry a
traceback or internal detail.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import serve

HI = [{"role": "user", "content": "hi"}]
J = {"content-type": "application/json"}

CHAT_CASES: list[tuple[str, bytes, dict[str, str], int, str | None]] = [
    # (name, raw body, headers, expected status, expected param)
    ("malformed json", b'{"model": "mock", "messages": [', J, 400, None),
    ("empty body", b"", J, 400, None),
    ("json array body", b"[1, 2]", J, 400, None),
    ("missing model", orjson.dumps({"messages": HI}), J, 400, "model"),
    ("model not a string", orjson.dumps({"model": 5, "messages": HI}), J, 400, "model"),
    ("missing messages", orjson.dumps({"model": "mock"}), J, 400, "messages"),
    ("messages not a list", orjson.dumps({"model": "mock", "messages": "hi"}), J, 400, "messages"),
    (
        "bad role",
        orjson.dumps({"model": "mock", "messages": [{"role": "wizard", "content": "x"}]}),
        J,
        400,
        "messages[0].role",
    ),
    (
        "role an object",
        orjson.dumps({"model": "mock", "messages": [{"role": {}, "content": "hi"}]}),
        J,
        400,
        "messages[0].role",
    ),
    (
        "role an array",
        orjson.dumps({"model": "mock", "messages": [{"role": ["user"], "content": "hi"}]}),
        J,
        400,
        "messages[0].role",
    ),
    (
        "content wrong type",
        orjson.dumps({"model": "mock", "messages": [{"role": "user", "content": 5}]}),
        J,
        400,
        "messages[0].content",
    ),
    (
        "temperature string",
        orjson.dumps({"model": "mock", "messages": HI, "temperature": "hot"}),
        J,
        400,
        "temperature",
    ),
    (
        "temperature out of range",
        orjson.dumps({"model": "mock", "messages": HI, "temperature": 9}),
        J,
        400,
        "temperature",
    ),
    ("max_tokens negative", orjson.dumps({"model": "mock", "messages": HI, "max_tokens": -1}), J, 400, "max_tokens"),
    ("stream not bool", orjson.dumps({"model": "mock", "messages": HI, "stream": "yes"}), J, 400, "stream"),
    ("stop wrong type", orjson.dumps({"model": "mock", "messages": HI, "stop": [1, 2]}), J, 400, "stop"),
    ("tools not a list", orjson.dumps({"model": "mock", "messages": HI, "tools": {}}), J, 400, "tools"),
    (
        "tool without function",
        orjson.dumps({"model": "mock", "messages": HI, "tools": [{"type": "function"}]}),
        J,
        400,
        "tools[0].function",
    ),
    (
        "tool message without id",
        orjson.dumps({"model": "mock", "messages": [{"role": "tool", "content": "x"}]}),
        J,
        400,
        "messages[0].tool_call_id",
    ),
    (
        "bad response_format",
        orjson.dumps({"model": "mock", "messages": HI, "response_format": {"type": "yaml"}}),
        J,
        400,
        "response_format.type",
    ),
    ("unknown model", orjson.dumps({"model": "nope", "messages": HI}), J, 404, "model"),
    ("form content type", b"model=mock", {"content-type": "application/x-www-form-urlencoded"}, 415, None),
    (
        "oversize body",
        orjson.dumps({"model": "mock", "messages": [{"role": "user", "content": "x" * 70_000}]}),
        J,
        413,
        None,
    ),
    ("invalid utf-8", b'{"model": "mock\xff", "messages": []}', J, 400, None),
]


@pytest.fixture(scope="module")
def url(gateway_url: str) -> str:
    return gateway_url


def _healthy(url: str) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "mock", "messages": HI}, timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("name", "body", "headers", "status", "param"), CHAT_CASES, ids=[c[0] for c in CHAT_CASES])
def test_chat_bad_input(
    url: str, name: str, body: bytes, headers: dict[str, str], status: int, param: str | None
) -> None:
    """Each malformed chat request gets its 4xx with an OpenAI error body naming the field, and the gateway keeps serving."""
    r = httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert "Traceback" not in r.text
    if param is not None:
        assert error["param"] == param
    _healthy(url)


ANTHROPIC_CASES: list[tuple[str, dict[str, Any] | bytes, int]] = [
    ("malformed json", b"{nope", 400),
    ("missing max_tokens", {"model": "mock", "messages": HI}, 400),
    ("messages not a list", {"model": "mock", "max_tokens": 5, "messages": {}}, 400),
    (
        "bad block type",
        {"model": "mock", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": 7}]}]},
        400,
    ),
    (
        "tool_choice type an object",
        {"model": "mock", "max_tokens": 5, "messages": HI, "tool_choice": {"type": {}}},
        400,
    ),
    ("unknown model", {"model": "nope", "max_tokens": 5, "messages": HI}, 404),
]


@pytest.mark.parametrize(("name", "body", "status"), ANTHROPIC_CASES, ids=[c[0] for c in ANTHROPIC_CASES])
def test_messages_bad_input(url: str, name: str, body: dict[str, Any] | bytes, status: int) -> None:
    """Malformed /v1/messages requests get Anthropic's error body with the right status."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    r = httpx.post(f"{url}/v1/messages", content=raw, headers=J, timeout=10)
    assert r.status_code == status, r.text
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] in ("invalid_request_error", "not_found_error")
    _healthy(url)


@pytest.mark.parametrize("role", [{}, [], ["user"]], ids=["object", "empty array", "array"])
def test_role_of_the_wrong_type_is_a_400_from_the_gateway_and_the_mock(
    url: str, mock_server_url: str, role: Any
) -> None:
    """A role that is an object or an array is a 400 naming 'messages[0].role' from the gateway and from the mock, never a 500 or Python's own text."""
    body = {"model": "mock", "messages": [{"role": role, "content": "hi"}]}
    for base in (url, mock_server_url):
        r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=10)
        assert r.status_code == 400, (base, r.text)
        message = r.json()["error"]["message"]
        assert message.startswith("'messages[0].role': expected one of"), (base, message)
        assert "unhashable" not in r.text and "Traceback" not in r.text
        if base == url:
            assert r.json()["error"]["param"] == "messages[0].role"
    _healthy(url)


def test_embeddings_bad_input(url: str) -> None:
    """Embeddings with no input, an input of none of OpenAI's shapes, or bad dimensions are 400s naming the field."""
    for body in (
        {"model": "mock"},
        {"model": "mock", "input": [1, "2"]},
        {"model": "mock", "input": "x", "dimensions": 0},
    ):
        r = httpx.post(f"{url}/v1/embeddings", json=body, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] in ("input", "dimensions")


def test_unknown_path_and_method(url: str) -> None:
    """An unknown path is a 404 and a wrong method a 405, both in OpenAI's error format."""
    r = httpx.get(f"{url}/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(f"{url}/v1/chat/completions")
    assert r.status_code == 405
    assert "error" in r.json()


def test_declared_oversize_is_refused_before_reading() -> None:
    """A Content-Length over the limit is refused with 413 from the header alone."""
    config = build_config(
        {
            "server": {"max_body_bytes": 100},
            "access": {"enabled": False},
            "ledger": {"enabled": False},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "x"}},
            "routes": {"mock": {"deployments": ["d"]}},
        }
    )
    with serve(create_app(config, environ={})) as base:
        r = httpx.post(f"{base}/v1/chat/completions", content=b"x" * 5000, headers=J)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"


def test_request_id_echoed_or_generated(url: str) -> None:
    """A client's x-request-id comes back on success and error; without one, each response gets a fresh id."""
    for body in ({"model": "mock", "messages": HI}, {"model": "nope", "messages": HI}):
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"x-request-id": "req-abc-123"})
        assert r.headers["x-request-id"] == "req-abc-123"
    ids = {
        httpx.post(f"{url}/v1/chat/completions", json={"model": "mock", "messages": HI}).headers["x-request-id"]
        for _ in range(3)
    }
    assert len(ids) == 3
