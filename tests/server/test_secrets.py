"""Provider credentials and callers' keys never reach a client, a log line, the ledger or /metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx2 as httpx
import pytest

from breakwater.observability.logging import JsonFormatter
from tests.server.conftest import PLANTED_SECRET
from tests.server.test_ledger import _row

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


CLIENT_SECRET = "sk-client-planted-93be1d2c7f"


def test_planted_secrets_reach_no_ledger_row_metric_or_admin_view(
    gateway_url: str, ledger_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider key and the caller's own bearer token, planted, are searched for in every
    output: responses, the ledger database (every byte of the file and its WAL), /metrics,
    /admin/deployments, and each log record as the JSON formatter writes it."""
    caplog.set_level(logging.DEBUG)
    ids = []
    for route in ("remote", "remote-claude", "remote-gemini"):
        for fault in ("none", "status=401", "status=500", "cut_after=1"):
            for stream in (False, True):
                r = httpx.post(
                    f"{gateway_url}/v1/chat/completions",
                    json={"model": route, "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"x-mock-fault": fault, "authorization": f"Bearer {CLIENT_SECRET}"},
                    timeout=10,
                )
                assert CLIENT_SECRET not in r.text and PLANTED_SECRET not in r.text
                ids.append(r.headers["x-request-id"])
    # every request's row has landed before the files are searched
    for rid in ids:
        _row(ledger_path, rid)
    blobs = [p.read_bytes() for p in ledger_path.parent.iterdir() if p.is_file()]
    blobs.append(httpx.get(f"{gateway_url}/metrics").content)
    blobs.append(httpx.get(f"{gateway_url}/admin/deployments").content)
    formatter = JsonFormatter()
    blobs.extend(formatter.format(record).encode() for record in caplog.records)
    for secret in (PLANTED_SECRET, CLIENT_SECRET):
        assert not [b for b in blobs if secret.encode() in b], f"{secret} leaked"


def test_the_log_formatter_redacts_secrets_whoever_logs_them() -> None:
    formatter = JsonFormatter()
    formatter.redactor.add([PLANTED_SECRET])
    record = logging.LogRecord("breakwater.x", logging.INFO, __file__, 1, "key %s, header Bearer abcdefgh12345, %s",
                               (PLANTED_SECRET, "AIzaSyA-1234567890abcdefghijkl"), None)  # fmt: skip
    line = formatter.format(record)
    assert PLANTED_SECRET not in line and "abcdefgh12345" not in line and "AIzaSy" not in line
    assert line.count("[REDACTED]") == 3
