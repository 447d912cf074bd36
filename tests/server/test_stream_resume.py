"""A stream that breaks mid-way resumes on another deployment, seen through the official SDKs."""

from __future__ import annotations

import httpx2

from tests.server.running import HELLO, anthropic_sdk, openai_sdk


def test_openai_stream_resumes_on_the_next_deployment(gateway_url: str) -> None:
    """On a `stream_failure: continue` route, a stream cut after a few chunks finishes normally for the OpenAI SDK,
    with the forwarded chunks' text and then the other deployment's continuation."""
    before = _failures(gateway_url)
    client = openai_sdk(gateway_url)
    raw = client.chat.completions.with_raw_response.create(model="mock-resume", messages=HELLO, stream=True)
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert len(text.split()) > 3
    assert raw.headers["x-breakwater-deployment"] == "d-flaky"  # the head names the deployment that started
    assert _failures(gateway_url) == before + 1  # it really broke, and was resumed


def _failures(gateway_url: str) -> int:
    rows = httpx2.get(f"{gateway_url}/admin/deployments").json()["data"]
    return next((int(r["failures"]) for r in rows if r["name"] == "d-flaky"), 0)


def test_anthropic_stream_resumes_on_the_next_deployment(gateway_url: str) -> None:
    """The same route through /v1/messages: the Anthropic SDK gets one complete message, ending in end_turn."""
    client = anthropic_sdk(gateway_url)
    with client.messages.stream(model="mock-resume", max_tokens=200, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert message.stop_reason == "end_turn"
    assert len(text.split()) > 3
