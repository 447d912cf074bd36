"""Data-loss prevention end to end: what the upstream received, what the client got back.

The upstream is the mock provider recording every body it is sent (over HTTP on loopback); its
scripted answers echo a placeholder when (and only when) the prompt holds one, so a masked
value coming back restored proves the provider saw the placeholder, not the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.infra.mock.app import create_mock_app
from breakwater.infra.mock.model import ScriptedAnswer
from breakwater.server.app import create_app
from tests.polling import until
from tests.server.recording import RecordingUpstream
from tests.server.running import anthropic_sdk, openai_sdk, serve
from tests.server.test_ledger import _row

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PROMPT = f"Write to {EMAIL} about my order."
#: the mock answers a prompt holding a masked e-mail with that placeholder, twice
ECHO = ScriptedAnswer.parse({"matches": r"\[EMAIL_1\]", "text": "I will write to [EMAIL_1] today; [EMAIL_1] is noted."})
RESTORED = f"I will write to {EMAIL} today; {EMAIL} is noted."
#: the self-hosted model repeats the address it was given: its answer, graded by a judge, holds it
REPEAT = ScriptedAnswer.parse({"matches": r"^Remind me", "text": f"Noted: {EMAIL}."})


class Upstream(RecordingUpstream):
    """The recording mock, with the scripted echo."""

    def __init__(self) -> None:
        super().__init__()
        self._app = create_mock_app([], answers=(ECHO, REPEAT))


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    recorder = Upstream()
    with serve(recorder) as url:
        yield recorder, url


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dlp") / "ledger.db"


@pytest.fixture(scope="module")
def gateway(upstream: tuple[Upstream, str], ledger: Path) -> Iterator[str]:
    """Routes over a self-hosted provider (raw data allowed) and external ones (OpenAI and
    Anthropic wires); a dead self-hosted deployment that falls back to the external one."""
    _, url = upstream
    one = {"retry": {"max_attempts": 1}}
    config = {
        "access": {"enabled": False},
        "ledger": {
            "url": f"sqlite:///{ledger}",
            "spool_path": str(ledger.with_suffix(".spool")),
            "flush_interval_s": 0.05,
        },
        "providers": {
            "local": {"type": "openai", "host": "mock", "base_url": f"{url}/v1", "dlp": {"action": "allow"}},
            "dead-local": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "dlp": {"action": "allow"}},
            "external": {"type": "openai", "host": "mock", "base_url": f"{url}/v1", "api_key": "env:KEY"},
            "claude": {"type": "anthropic", "host": "mock", "base_url": url, "api_key": "env:KEY"},
        },
        "deployments": {
            "d-local": {"provider": "local", "model": "local-model"},
            "d-dead": {"provider": "dead-local", "model": "dead-model"},
            "d-external": {"provider": "external", "model": "external-model"},
            "d-claude": {"provider": "claude", "model": "claude-model"},
        },
        "routes": {
            "self-hosted": {"deployments": ["d-local"], "dlp": {"action": "redact"}, **one},
            "external": {"deployments": ["d-external"], "dlp": {"action": "redact"}, **one},
            "fallback": {
                "deployments": ["d-dead", "d-external"],
                "dlp": {"action": "redact"},
                "retry": {"max_attempts": 2},
            },
            "masked": {"deployments": ["d-external"], "dlp": {"action": "mask"}, **one},
            "masked-claude": {"deployments": ["d-claude"], "dlp": {"action": "mask"}, **one},
            "guarded": {"deployments": ["d-external"], "dlp": {"kinds": {"card": "block"}}, **one},
            "guarded-claude": {"deployments": ["d-claude"], "dlp": {"kinds": {"card": "block"}}, **one},
            "graded": {
                "deployments": ["d-local"],
                "dlp": {"action": "redact"},
                "drift": {"share": 1.0, "asserts": [{"type": "llm-rubric", "value": "is polite"}], "judge": "grader"},
                **one,
            },
            "grader": {"deployments": ["d-claude"], **one},
            "moderated": {
                "deployments": ["d-external"],
                "dlp": {"action": "redact", "kinds": {"card": "block"}},
                **one,
            },
            "templated": {
                "deployments": ["d-external"],
                "dlp": {"action": "redact", "kinds": {"card": "block"}},
                "prompt": "note",
                **one,
            },
        },
        "prompts": {
            "note": {
                "versions": {
                    1: {
                        "messages": [{"role": "user", "content": "Send a note to {{ contact }}."}],
                        "variables": {"contact": {"type": "string"}},
                    }
                },
                "current": 1,
            }
        },
    }
    app = create_app(build_config(config), environ={"KEY": "k"})
    with serve(app) as gateway:
        yield gateway


def _last_user(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def _sent_to(recorder: Upstream, path: str, model: str) -> dict[str, Any]:
    return [b for b in recorder.bodies[path] if b["model"] == model][-1]


def test_a_self_hosted_deployment_gets_raw_data_and_an_external_one_redacted(
    upstream: tuple[Upstream, str], gateway: str
) -> None:
    """The same request reaches the self-hosted provider as sent and the external one with typed placeholders."""
    recorder, _ = upstream
    client = openai_sdk(gateway)
    for route in ("self-hosted", "external"):
        client.chat.completions.create(model=route, messages=[{"role": "user", "content": PROMPT}])
    assert _last_user(_sent_to(recorder, "/v1/chat/completions", "local-model")) == PROMPT
    assert _last_user(_sent_to(recorder, "/v1/chat/completions", "external-model")) == (
        "Write to [EMAIL] about my order."
    )


def test_a_fallback_from_self_hosted_to_external_is_redacted_for_the_external_one(
    upstream: tuple[Upstream, str], gateway: str
) -> None:
    """The policy applies to the request each deployment is sent: the fallback's external call is redacted."""
    recorder, _ = upstream
    before = len(recorder.bodies.get("/v1/chat/completions", []))
    reply = openai_sdk(gateway).chat.completions.with_raw_response.create(
        model="fallback", messages=[{"role": "user", "content": PROMPT}]
    )
    assert reply.headers["x-breakwater-deployment"] == "d-external"
    sent = recorder.bodies["/v1/chat/completions"][before:]
    assert [_last_user(b) for b in sent] == ["Write to [EMAIL] about my order."]


def test_a_masked_value_comes_back_in_a_streamed_openai_answer(upstream: tuple[Upstream, str], gateway: str) -> None:
    """The provider sees ``[EMAIL_1]``; the client's stream (placeholders split across chunks) shows the address."""
    recorder, _ = upstream
    stream = openai_sdk(gateway).chat.completions.create(
        model="masked", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == RESTORED
    assert _last_user(_sent_to(recorder, "/v1/chat/completions", "external-model")) == (
        "Write to [EMAIL_1] about my order."
    )
    assert EMAIL not in json.dumps(recorder.bodies["/v1/chat/completions"][-1])


def test_a_masked_value_comes_back_in_a_whole_openai_answer_with_unmodelled_fields_kept(
    upstream: tuple[Upstream, str], gateway: str
) -> None:
    """A whole answer keeps the fast path: a field Breakwater does not model still reaches the upstream."""
    recorder, _ = upstream
    reply = openai_sdk(gateway).chat.completions.create(
        model="masked", messages=[{"role": "user", "content": PROMPT}], extra_body={"reasoning_effort": "low"}
    )
    assert reply.choices[0].message.content == RESTORED
    sent = _sent_to(recorder, "/v1/chat/completions", "external-model")
    assert _last_user(sent) == "Write to [EMAIL_1] about my order." and sent["reasoning_effort"] == "low"


def test_a_masked_value_comes_back_in_whole_and_streamed_anthropic_answers(
    upstream: tuple[Upstream, str], gateway: str
) -> None:
    """Both shapes of an Anthropic answer get the value back; the provider only ever saw the placeholder."""
    recorder, _ = upstream
    client = anthropic_sdk(gateway)
    message = client.messages.create(
        model="masked-claude", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
    )
    assert message.content[0].type == "text" and message.content[0].text == RESTORED
    with client.messages.stream(
        model="masked-claude", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        assert "".join(stream.text_stream) == RESTORED
    assert all(EMAIL not in json.dumps(body) for body in recorder.bodies["/v1/messages"])


def test_a_blocked_kind_is_a_400_in_the_openai_format_naming_it(gateway: str, ledger: Path) -> None:
    """A card on a route that blocks cards: 400 ``sensitive_data_blocked``, the kind named, the number never echoed."""
    with pytest.raises(openai.BadRequestError) as info:
        openai_sdk(gateway).chat.completions.create(
            model="guarded", messages=[{"role": "user", "content": f"charge {CARD} please"}]
        )
    error = info.value
    assert error.status_code == 400 and error.code == "sensitive_data_blocked"
    assert "card" in error.message and CARD not in error.response.text and "1111" not in error.response.text
    row = _row(ledger, error.response.headers["x-request-id"])
    assert row["dlp_findings"] == "card:block:1" and row["status"] == 400


def test_a_blocked_kind_is_a_400_in_the_anthropic_format(gateway: str) -> None:
    """The same block answered to the Anthropic SDK in Anthropic's error shape."""
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_sdk(gateway).messages.create(
            model="guarded-claude", max_tokens=50, messages=[{"role": "user", "content": f"charge {CARD} please"}]
        )
    body = info.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "card" in body["error"]["message"] and "1111" not in info.value.response.text


def test_findings_are_counted_by_kind_and_action_in_metrics_and_the_ledger(gateway: str, ledger: Path) -> None:
    """A request with an e-mail on a redacting route: the ledger row and /metrics name the kind and action only."""
    reply = openai_sdk(gateway).chat.completions.with_raw_response.create(
        model="external", messages=[{"role": "user", "content": f"{PROMPT} Also {EMAIL}."}]
    )
    row = _row(ledger, reply.headers["x-request-id"])
    assert row["dlp_findings"] == "email:redact:2"
    metrics = httpx.get(f"{gateway}/metrics").text
    assert 'breakwater_dlp_findings_total{action="redact",kind="email",route="external"}' in metrics
    assert EMAIL not in metrics


def test_embeddings_inputs_reach_a_self_hosted_deployment_raw_and_an_external_one_redacted(
    upstream: tuple[Upstream, str], gateway: str, ledger: Path
) -> None:
    """The inputs of an embeddings request get the same per-provider policy as a chat's text."""
    recorder, _ = upstream
    client = openai_sdk(gateway)
    client.embeddings.create(model="self-hosted", input=[PROMPT, "no data here"])
    reply = client.embeddings.with_raw_response.create(model="external", input=[PROMPT, "no data here"])
    assert _sent_to(recorder, "/v1/embeddings", "local-model")["input"] == [PROMPT, "no data here"]
    assert _sent_to(recorder, "/v1/embeddings", "external-model")["input"] == [
        "Write to [EMAIL] about my order.",
        "no data here",
    ]
    assert _row(ledger, reply.headers["x-request-id"])["dlp_findings"] == "email:redact:1"


def test_an_embeddings_input_with_a_blocked_kind_is_a_400_naming_it(
    upstream: tuple[Upstream, str], gateway: str
) -> None:
    """A card in an embeddings input on a route that blocks cards never reaches the provider."""
    recorder, _ = upstream
    before = len(recorder.bodies.get("/v1/embeddings", []))
    with pytest.raises(openai.BadRequestError) as info:
        openai_sdk(gateway).embeddings.create(model="guarded", input=f"charge {CARD} please")
    assert info.value.code == "sensitive_data_blocked" and "1111" not in info.value.response.text
    assert len(recorder.bodies.get("/v1/embeddings", [])) == before


def test_a_registry_prompt_s_variables_are_scanned_and_the_rendered_text_redacted(
    upstream: tuple[Upstream, str], gateway: str, ledger: Path
) -> None:
    """The caller's values rendered into a registry prompt are counted, blocked or redacted like its messages."""
    recorder, _ = upstream
    client = openai_sdk(gateway)
    reply = client.chat.completions.with_raw_response.create(
        model="templated", messages=[], extra_body={"prompt": {"variables": {"contact": EMAIL}}}
    )
    assert _last_user(_sent_to(recorder, "/v1/chat/completions", "external-model")) == "Send a note to [EMAIL]."
    assert _row(ledger, reply.headers["x-request-id"])["dlp_findings"] == "email:redact:1"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="templated", messages=[], extra_body={"prompt": {"variables": {"contact": CARD}}}
        )
    assert info.value.code == "sensitive_data_blocked" and "1111" not in info.value.response.text


def test_a_drift_judge_gets_the_graded_request_as_an_external_provider_may(
    upstream: tuple[Upstream, str], gateway: str
) -> None:
    """The graded route's self-hosted deployment gets the e-mail and answers with it; the judge's
    grading request, which quotes that answer, reaches the external judge deployment redacted."""
    recorder, _ = upstream
    before = len(recorder.bodies.get("/v1/messages", []))
    prompt = f"Remind me: my address is {EMAIL}."
    answer = openai_sdk(gateway).chat.completions.create(model="graded", messages=[{"role": "user", "content": prompt}])
    assert answer.choices[0].message.content == f"Noted: {EMAIL}."
    assert _last_user(_sent_to(recorder, "/v1/chat/completions", "local-model")) == prompt
    until(lambda: len(recorder.bodies.get("/v1/messages", [])) > before, 10, "the judge is called")
    grading = json.dumps(recorder.bodies["/v1/messages"][before:])
    assert "Noted: [EMAIL]." in grading and EMAIL not in grading


def test_moderation_inputs_reach_an_external_provider_redacted_and_a_blocked_kind_is_a_400(
    upstream: tuple[Upstream, str], gateway: str, ledger: Path
) -> None:
    """The texts sent to be classified go to a provider too: the same policy applies to them."""
    recorder, _ = upstream
    client = openai_sdk(gateway)
    reply = client.moderations.with_raw_response.create(model="moderated", input=[PROMPT, "nothing here"])
    assert recorder.bodies["/v1/moderations"][-1]["input"] == ["Write to [EMAIL] about my order.", "nothing here"]
    assert _row(ledger, reply.headers["x-request-id"])["dlp_findings"] == "email:redact:1"
    before = len(recorder.bodies["/v1/moderations"])
    with pytest.raises(openai.BadRequestError) as info:
        client.moderations.create(model="moderated", input=f"charge {CARD} please")
    assert info.value.code == "sensitive_data_blocked" and "1111" not in info.value.response.text
    assert len(recorder.bodies["/v1/moderations"]) == before
