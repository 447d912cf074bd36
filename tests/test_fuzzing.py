"""The fuzz tests' checks (``tests/fuzzing.py``) reject what they are meant to, and pass what is fine."""

from __future__ import annotations

import logging
import sys

import httpx2
import orjson
import pytest

from tests.fuzzing import Request, Wire, check_answer, logged_failures

REQUEST = Request("POST", "/v1/chat/completions", b"{}", {"content-type": "application/json"})
SSE = {"content-type": "text/event-stream"}
OPENAI_ERROR = orjson.dumps({"error": {"message": "'model' is required", "type": "t", "param": "model", "code": None}})


def _sse(*frames: str) -> bytes:
    return "".join(f"{frame}\n\n" for frame in frames).encode()


@pytest.mark.parametrize(
    ("wire", "status", "headers", "body"),
    [
        ("openai", 200, {}, b'{"id": "x"}'),
        ("openai", 400, {}, OPENAI_ERROR),
        ("anthropic", 404, {}, b'{"type": "error", "error": {"type": "not_found_error", "message": "no model"}}'),
        ("gemini", 400, {}, b'{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}'),
        ("openai", 200, SSE, _sse('data: {"id": "x"}', "data: [DONE]")),
        ("openai", 200, SSE, _sse('data: {"id": "x"}', 'data: {"error": {"message": "upstream cut", "type": "t"}}')),
        ("anthropic", 200, SSE, _sse("event: message_start\ndata: {}", "event: message_stop\ndata: {}")),
        ("anthropic", 200, SSE, _sse('event: error\ndata: {"type": "error", "error": {"message": "cut"}}')),
        ("gemini", 200, SSE, _sse('data: {"candidates": []}')),
    ],
    ids=[
        "ok",
        "openai 400",
        "anthropic 404",
        "gemini 400",
        "stream",
        "stream error",
        "anthropic stream",
        "anthropic error",
        "gemini",
    ],
)
def test_good_answers_pass(wire: Wire, status: int, headers: dict[str, str], body: bytes) -> None:
    """Successes, 4xx errors in the wire's envelope, and streams that end or end in an error event pass."""
    check_answer(httpx2.Response(status, headers=headers, content=body), wire, REQUEST)


@pytest.mark.parametrize(
    ("wire", "status", "headers", "body", "complaint"),
    [
        ("openai", 500, {}, OPENAI_ERROR, "500 for"),
        ("openai", 502, {}, OPENAI_ERROR, "502 for"),
        ("openai", 400, {}, orjson.dumps({"error": {"message": "unhashable type: 'dict'"}}), None),
        (
            "openai",
            400,
            {},
            orjson.dumps({"error": {"message": "unhashable type: 'dict'", "type": "t", "param": None, "code": None}}),
            "Python exception text",
        ),
        (
            "anthropic",
            400,
            {},
            b'{"type": "error", "error": {"type": "x", "message": "Invalid request: boom"}}',
            "Python",
        ),
        ("openai", 200, SSE, _sse('data: {"id": "x"}'), "stopped without"),
        ("anthropic", 200, SSE, _sse("event: message_start\ndata: {}"), "stopped without"),
        ("openai", 200, SSE, _sse("data: {not json"), "not JSON"),
        ("openai", 400, SSE, _sse("data: [DONE]"), None),
    ],
    ids=[
        "500",
        "502",
        "not the envelope",
        "Python text",
        "old catch-all",
        "cut stream",
        "cut anthropic",
        "bad frame",
        "error stream",
    ],
)
def test_bad_answers_fail(wire: Wire, status: int, headers: dict[str, str], body: bytes, complaint: str | None) -> None:
    """A 5xx, an error outside the wire's envelope or with Python's text, and a stream that just stops all fail."""
    with pytest.raises(AssertionError, match=complaint):
        check_answer(httpx2.Response(status, headers=headers, content=body), wire, REQUEST)


def test_logged_failures_are_tracebacks_only() -> None:
    """Records with exception info, or ERROR records holding a traceback, count; other warnings and errors do not."""

    def record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
        try:
            raise TypeError("boom")
        except TypeError:
            info = sys.exc_info() if exc else None
        return logging.LogRecord("breakwater.server", level, __file__, 1, message, None, info)

    assert logged_failures([record(logging.WARNING, "upstream call failed"), record(logging.ERROR, "limit")]) == []
    assert len(logged_failures([record(logging.ERROR, "internal error", exc=True)])) == 1
    assert len(logged_failures([record(logging.WARNING, "retrying", exc=True)])) == 1
    assert len(logged_failures([record(logging.ERROR, "Traceback (most recent call last): ...")])) == 1
