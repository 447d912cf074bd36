"""History trimming end to end (docs/configuration.md, "History trimming"): what the upstream
received over HTTP, the ledger row and the metrics, for the drop and summarise modes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.recording import RecordingUpstream
from tests.server.running import openai_sdk, serve
from tests.server.test_ledger import _row

OLD = "Tell me about the harbour wall and its history. " * 40  # about 400 tokens


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trim") / "ledger.db"


@pytest.fixture(scope="module")
def gateway(upstream: tuple[RecordingUpstream, str], ledger: Path) -> Iterator[str]:
    """A dropping route, a summarising one and the cheap route that writes summaries, all on the recording mock."""
    _, url = upstream
    one = {"retry": {"max_attempts": 1}}
    config = {
        "access": {"enabled": False},
        "ledger": {
            "url": f"sqlite:///{ledger}",
            "spool_path": str(ledger.with_suffix(".spool")),
            "flush_interval_s": 0.05,
        },
        "providers": {"up": {"type": "openai", "host": "mock", "base_url": f"{url}/v1", "api_key": "env:KEY"}},
        "deployments": {
            "d-big": {"provider": "up", "model": "gpt-4o"},
            "d-cheap": {"provider": "up", "model": "gpt-4o-mini"},
        },
        "routes": {
            "dropping": {"deployments": ["d-big"], "trim": {"max_input_tokens": 500}, **one},
            "summarising": {
                "deployments": ["d-big"],
                "trim": {"max_input_tokens": 700, "mode": "summarise", "summarise_route": "cheap"},
                **one,
            },
            "cheap": {"deployments": ["d-cheap"], **one},
        },
    }
    with serve(create_app(build_config(config), environ={"KEY": "k"})) as gateway:
        yield gateway


def _messages() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a harbour guide."},
        {"role": "user", "content": OLD},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": OLD},
        {"role": "assistant", "content": "It was built in 1850."},
        {"role": "user", "content": "And who built it?"},
    ]


def _call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "lookup", "arguments": '{"q": "wall"}'}}


def _sent(recorder: RecordingUpstream, model: str) -> dict[str, Any]:
    return [b for b in recorder.bodies["/v1/chat/completions"] if b["model"] == model][-1]


def test_a_long_history_reaches_the_upstream_without_its_oldest_turn(
    upstream: tuple[RecordingUpstream, str], gateway: str, ledger: Path
) -> None:
    """The first turn (the question, the tool call and its result, the answer) goes as a whole; the
    body keeps the fields the gateway does not model; the ledger and /metrics count what went."""
    recorder, _ = upstream
    reply = openai_sdk(gateway).chat.completions.with_raw_response.create(
        model="dropping",
        messages=_messages(),
        extra_body={"reasoning_effort": "low"},  # type: ignore[arg-type]
    )
    sent = _sent(recorder, "gpt-4o")
    assert sent["messages"] == [
        {"role": "system", "content": "You are a harbour guide."},
        {"role": "user", "content": "And who built it?"},
    ]
    assert sent["reasoning_effort"] == "low"
    row = _row(ledger, reply.headers["x-request-id"])
    assert row["trimmed_messages"] == 4 and row["trimmed_tokens"] > 700 and row["trim_summary"] == 0
    metrics = httpx.get(f"{gateway}/metrics").text
    assert 'breakwater_trimmed_requests_total{mode="drop",route="dropping"} 1.0' in metrics
    assert 'breakwater_trimmed_messages_total{route="dropping"} 4.0' in metrics


def test_a_short_conversation_is_sent_as_it_came(
    upstream: tuple[RecordingUpstream, str], gateway: str, ledger: Path
) -> None:
    """Under the budget nothing changes, and the row says nothing was trimmed."""
    recorder, _ = upstream
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "bye"},
    ]
    reply = openai_sdk(gateway).chat.completions.with_raw_response.create(model="dropping", messages=messages)  # type: ignore[arg-type]
    assert _sent(recorder, "gpt-4o")["messages"] == messages
    assert _row(ledger, reply.headers["x-request-id"])["trimmed_messages"] is None


def test_summarise_mode_sends_a_summary_written_by_the_cheap_route(
    upstream: tuple[RecordingUpstream, str], gateway: str, ledger: Path
) -> None:
    """The cheap route gets the removed turns; the answer to the request follows the system prompt;
    the row is the request's one row."""
    recorder, _ = upstream
    reply = openai_sdk(gateway).chat.completions.with_raw_response.create(model="summarising", messages=_messages())  # type: ignore[arg-type]
    asked = _sent(recorder, "gpt-4o-mini")
    assert "harbour wall" in asked["messages"][1]["content"] and "lookup" in asked["messages"][1]["content"]
    sent = _sent(recorder, "gpt-4o")["messages"]
    assert [m["role"] for m in sent] == ["system", "system", "user"]
    assert sent[1]["content"].startswith("Summary of the earlier conversation: ")
    row = _row(ledger, reply.headers["x-request-id"])
    assert row["trimmed_messages"] == 4 and row["trim_summary"] == 1 and row["route"] == "summarising"
