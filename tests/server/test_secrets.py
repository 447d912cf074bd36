"""Provider credentials never reach a client: not in errors, headers, model lists or logs."""

from __future__ import annotations

import logging

import httpx2 as httpx
import pytest

from tests.server.conftest import PLANTED_SECRET

FAULTS = ["status=401", "status=403", "status=404", "status=429;retry_after=1", "status=500", "status=529",
          "context_length", "content_filter=prompt", "malformed", "reset", "cut_after=1"]  # fmt: skip


@pytest.mark.parametrize("route", ["remote", "remote-claude", "remote-gemini"])
def test_planted_key_never_in_any_response_or_log(
    gateway_url: str, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Under every injected upstream failure, plain and streamed, the provider key appears in no response and no log line."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for fault in FAULTS:
        for stream in (False, True):
            for path, body in (
                (
                    "/v1/chat/completions",
                    {"model": route, "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
                ),
                (
                    "/v1/messages",
                    {
                        "model": route,
                        "stream": stream,
                        "max_tokens": 20,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                ),
            ):
                r = httpx.post(f"{gateway_url}{path}", json=body, headers={"x-mock-fault": fault}, timeout=10)
                seen.append(r.text)
                seen.extend(f"{k}: {v}" for k, v in r.headers.items())
    for path in ("/v1/models", "/readyz", "/healthz"):
        seen.append(httpx.get(f"{gateway_url}{path}").text)
    seen.extend(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert not [s for s in seen if PLANTED_SECRET in s]


def test_upstream_auth_failure_is_a_gateway_error(gateway_url: str) -> None:
    """The provider rejecting the gateway's key is a 502 naming the provider, not a 401 blaming the caller."""
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "remote", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-mock-fault": "status=401"},
    )
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_authentication_error"
    assert "remote-openai" in r.json()["error"]["message"]
