"""The one error mapping: the gateway's own backpressure is a 429 the client's SDK may retry."""

from __future__ import annotations

import orjson

from breakwater.core.errors import Saturated
from breakwater.server.errors import anthropic_error, openai_error, stream_error

MESSAGE = "deployment 'gpt' is saturated (4 in flight, 100 waiting): the queue is full; retry after 3s"


def test_saturated_is_a_retryable_429_on_openai_routes() -> None:
    """Saturated maps to 429 rate_limit_error / deployment_saturated with Retry-After and without x-should-retry: false."""
    status, headers, body = openai_error(Saturated(MESSAGE, retry_after=3.0), "req-1")
    assert status == 429
    names = dict(headers)
    assert names[b"retry-after"] == b"3"
    assert b"x-should-retry" not in names
    assert orjson.loads(body) == {
        "error": {"message": MESSAGE, "type": "rate_limit_error", "param": None, "code": "deployment_saturated"}
    }


def test_saturated_is_a_retryable_429_on_anthropic_routes() -> None:
    """On /v1/messages Saturated maps to 429 rate_limit_error with Retry-After and without x-should-retry: false."""
    status, headers, body = anthropic_error(Saturated(MESSAGE, retry_after=3.0), "req-1")
    assert status == 429
    names = dict(headers)
    assert names[b"retry-after"] == b"3"
    assert b"x-should-retry" not in names
    assert orjson.loads(body) == {"type": "error", "error": {"type": "rate_limit_error", "message": MESSAGE}}


def test_saturated_in_a_stream_is_a_rate_limit_error() -> None:
    """An in-stream Saturated error event carries the rate_limit_error type in both wire formats."""
    exc = Saturated(MESSAGE, retry_after=3.0)
    assert stream_error(exc, "req-1", "openai") == (MESSAGE, "rate_limit_error", "deployment_saturated")
    assert stream_error(exc, "req-1", "anthropic") == (MESSAGE, "rate_limit_error", "deployment_saturated")
