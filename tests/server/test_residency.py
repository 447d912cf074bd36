"""Data residency end to end: a request restricted to some regions is never sent elsewhere.

The US deployments' upstream is the mock recording every body it is sent (``recording.py``),
each US deployment under its own upstream model name; the tests assert on what it received, not
on what the gateway says it did. The EU deployments are the in-process mock (``eu``) and a
provider nothing listens on (``eu-dead``), so "the EU deployment is down" is real.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.polling import until
from tests.server.recording import RecordingUpstream
from tests.server.running import admin_http, anthropic_sdk, openai_sdk, serve
from tests.server.test_ledger import _row

ADMIN = "adm-residency-5e1f"
HI: list[Any] = [{"role": "user", "content": "hi"}]
FAST_RETRY = {"max_attempts": 4, "base_delay_s": 0.001, "max_delay_s": 0.005, "budget_min_retries": 100}
NO_BREAKER = {"consecutive_failures": 1000000, "min_volume": 1000000}


@dataclass
class Gateway:
    url: str
    admin: httpx.Client
    upstream: RecordingUpstream
    ledger: Path

    def key(self, **spec: Any) -> str:
        r = self.admin.post("/admin/keys", json=spec)
        assert r.status_code == 201, r.text
        key: str = r.json()["key"]
        return key

    def us_models(self) -> list[str]:
        """The upstream models of every body the US upstream received."""
        return [body.get("model") for bodies in self.upstream.bodies.values() for body in bodies]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("residency")
    recorder = RecordingUpstream()
    with serve(recorder) as us_url:
        one = {"deployments": [], "retry": FAST_RETRY}
        config = build_config(
            {
                "server": {"admin_key": "env:BW_ADMIN"},
                "access": {"store": f"sqlite:///{tmp}/keys.db", "hash_secret": "env:BW_HASH"},
                "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"),
                           "flush_interval_s": 0.05},
                "cache": {"embedder": {"model": "us-embed"}},
                "batches": {"poll_s": 0.05},
                "providers": {
                    "us": {"type": "openai", "host": "mock", "base_url": f"{us_url}/v1", "region": "us-east-1",
                           "data_terms": "US processing, 30-day retention"},
                    "eu": {"type": "mock", "region": "eu-west-1"},
                    "eu-dead": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "region": "eu"},
                    "eu-flaky": {"type": "mock", "region": "eu", "faults": [{"fault": "reset_after=4"}]},
                },
                "deployments": {
                    "d-us": {"provider": "us", "model": "us-model", "breaker": NO_BREAKER},
                    "d-us-fallback": {"provider": "us", "model": "us-fallback", "breaker": NO_BREAKER},
                    "d-us-overflow": {"provider": "us", "model": "us-overflow", "breaker": NO_BREAKER},
                    "d-us-shadow": {"provider": "us", "model": "us-shadow", "breaker": NO_BREAKER},
                    "d-us-routed": {"provider": "us", "model": "us-routed", "breaker": NO_BREAKER},
                    "d-us-branch": {"provider": "us", "model": "us-branch", "breaker": NO_BREAKER},
                    "d-us-strong": {"provider": "us", "model": "us-strong", "breaker": NO_BREAKER},
                    "d-us-summary": {"provider": "us", "model": "us-summary", "breaker": NO_BREAKER},
                    "d-us-judge": {"provider": "us", "model": "us-judge", "breaker": NO_BREAKER},
                    "d-us-embed": {"provider": "us", "model": "us-embed", "breaker": NO_BREAKER},
                    "d-eu": {"provider": "eu", "model": "mock-gpt", "breaker": NO_BREAKER},
                    "d-eu-flaky": {"provider": "eu-flaky", "model": "mock-gpt", "breaker": NO_BREAKER},
                    "d-us-resume": {"provider": "us", "model": "us-resume", "breaker": NO_BREAKER},
                    "d-eu-dead": {"provider": "eu-dead", "model": "eu-dead", "breaker": NO_BREAKER},
                    "d-eu-narrow": {"provider": "eu-dead", "model": "eu-dead", "breaker": NO_BREAKER,
                                    "max_concurrency": 1, "max_queue": 0},
                },
                "routes": {
                    "chat": {**one, "deployments": ["d-us", "d-eu"]},
                    "chat-eu-down": {**one, "deployments": ["d-us", "d-eu-dead"]},
                    "overflowing": {**one, "deployments": ["d-eu-narrow", "d-us-overflow"], "overflow": True},
                    "us-only": {**one, "deployments": ["d-us-fallback"]},
                    "falls-back": {**one, "deployments": ["d-eu-dead"], "fallbacks": {"general": ["us-only"]}},
                    "us-candidate": {**one, "deployments": ["d-us-shadow"]},
                    "shadowed": {**one, "deployments": ["d-eu"], "shadow": {"route": "us-candidate"}},
                    "eu-route": {**one, "deployments": ["d-us-routed", "d-eu"], "allowed_regions": ["eu"]},
                    "resumed": {**one, "deployments": ["d-eu-flaky", "d-us-resume"], "stream_failure": "continue"},
                    "us-branch": {**one, "deployments": ["d-us-branch"]},
                    "eu-branch": {**one, "deployments": ["d-eu"]},
                    "branched": {"branches": {"us": {"route": "us-branch"}, "eu": {"route": "eu-branch"}},
                                 "default": "us"},
                    "eu-down": {**one, "deployments": ["d-eu-dead"]},
                    "us-strong": {**one, "deployments": ["d-us-strong"]},
                    "cascaded": {"branches": {"cheap": {"route": "eu-down"}, "strong": {"route": "us-strong"}},
                                 "cascade": {"steps": ["cheap", "strong"], "checks": {}}},
                    "us-summary": {**one, "deployments": ["d-us-summary"]},
                    "trimmed": {**one, "deployments": ["d-eu"],
                                "trim": {"max_input_tokens": 60, "summary_max_tokens": 16, "mode": "summarise", "summarise_route": "us-summary"}},
                    "us-judge": {**one, "deployments": ["d-us-judge"]},
                    "watched": {**one, "deployments": ["d-eu"],
                                "drift": {"share": 1.0, "asserts": [{"type": "llm-rubric", "value": "is polite"}],
                                          "judge": "us-judge"}},
                    "us-embed": {**one, "deployments": ["d-us-embed"]},
                    "cached": {**one, "deployments": ["d-eu"], "cache": {"mode": "semantic"}},
                },
            }
        )  # fmt: skip
        app = create_app(config, environ={"BW_ADMIN": ADMIN, "BW_HASH": "hash-secret-for-tests-0123456789"})
        with serve(app) as url:
            yield Gateway(url, admin_http(url, ADMIN), recorder, tmp / "ledger.db")


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body


def _refused(gateway: Gateway, key: str, model: str) -> dict[str, Any]:
    with pytest.raises(openai.APIStatusError) as caught:
        openai_sdk(gateway.url, key).chat.completions.create(model=model, messages=HI)
    assert caught.value.status_code == 503
    return _error(caught.value)


def test_an_eu_key_always_gets_the_eu_deployment(gateway: Gateway) -> None:
    """The route lists the US deployment first: an unrestricted key gets it, an EU key never."""
    anywhere, eu = gateway.key(name="anywhere"), gateway.key(name="eu-only", regions=["eu"])
    before = gateway.us_models().count("us-model")
    raw = openai_sdk(gateway.url, eu).chat.completions.with_raw_response
    for _ in range(5):
        answer = raw.create(model="chat", messages=HI)
        assert answer.headers["x-breakwater-deployment"] == "d-eu"
    assert gateway.us_models().count("us-model") == before
    served = openai_sdk(gateway.url, anywhere).chat.completions.with_raw_response.create(model="chat", messages=HI)
    assert served.headers["x-breakwater-deployment"] == "d-us"
    assert gateway.us_models().count("us-model") == before + 1
    row = _row(gateway.ledger, answer.headers["x-request-id"])
    assert row["region"] == "eu-west-1" and row["deployment"] == "d-eu"
    assert _row(gateway.ledger, served.headers["x-request-id"])["region"] == "us-east-1"


def test_with_the_eu_deployment_down_retries_never_cross_to_the_us(gateway: Gateway) -> None:
    """Every retry goes to the dead EU deployment; the request fails clearly, the US got nothing."""
    eu = gateway.key(name="eu-retries", regions=["eu"])
    before = gateway.us_models().count("us-model")
    body = _refused(gateway, eu, "chat-eu-down")
    assert body["code"] == "region_unavailable"
    message = body["message"]
    assert "allowed regions (eu)" in message and "d-us: skipped (region us-east-1 not allowed)" in message
    assert gateway.us_models().count("us-model") == before


def test_the_error_speaks_each_callers_format(gateway: Gateway) -> None:
    """Anthropic's Messages API and the Responses API say the same 503, in their own shapes."""
    eu = gateway.key(name="eu-formats", regions=["eu"])
    before = gateway.us_models().count("us-model")
    with pytest.raises(anthropic.APIStatusError) as caught:
        anthropic_sdk(gateway.url, eu).messages.create(model="chat-eu-down", max_tokens=20, messages=HI)
    assert caught.value.status_code == 503
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and "allowed regions (eu)" in body["error"]["message"]
    with pytest.raises(openai.APIStatusError) as responses:
        openai_sdk(gateway.url, eu).responses.create(model="chat-eu-down", input="hi")
    assert responses.value.status_code == 503
    assert _error(responses.value)["code"] == "region_unavailable"
    assert gateway.us_models().count("us-model") == before


def test_a_fallback_route_in_the_us_is_not_taken(gateway: Gateway) -> None:
    eu = gateway.key(name="eu-fallback", regions=["eu"])
    body = _refused(gateway, eu, "falls-back")
    assert body["code"] == "region_unavailable"
    assert "us-fallback" not in gateway.us_models()
    # without the restriction the fallback route serves (the setup works)
    anywhere = gateway.key(name="fallback-anywhere")
    openai_sdk(gateway.url, anywhere).chat.completions.create(model="falls-back", messages=HI)
    assert "us-fallback" in gateway.us_models()


def test_overflow_does_not_carry_a_request_across(gateway: Gateway) -> None:
    eu = gateway.key(name="eu-overflow", regions=["eu"])
    assert _refused(gateway, eu, "overflowing")["code"] == "region_unavailable"
    assert "us-overflow" not in gateway.us_models()


def test_shadow_traffic_stays_in_the_region(gateway: Gateway) -> None:
    """The EU answer is served; its mirror to a US-only candidate fails (recorded), unsent."""
    eu = gateway.key(name="eu-shadow", regions=["eu"])
    answer = openai_sdk(gateway.url, eu).chat.completions.with_raw_response.create(model="shadowed", messages=HI)
    primary = answer.headers["x-request-id"]

    def mirrored() -> bool:
        db = sqlite3.connect(gateway.ledger)
        try:
            found = db.execute("SELECT status FROM breakwater_ledger WHERE shadow_of = ?", (primary,)).fetchall()
        except sqlite3.OperationalError:
            found = []
        finally:
            db.close()
        return bool(found) and found[0][0] == 502

    until(mirrored, 10, "the shadow call's row is recorded as failed")
    assert "us-shadow" not in gateway.us_models()


def test_a_team_and_a_route_restrict_too(gateway: Gateway) -> None:
    """A team's regions hold for its keys; a route's ``allowed_regions`` for every caller."""
    assert gateway.admin.post("/admin/teams", json={"name": "emea", "regions": ["eu"]}).status_code == 201
    member = gateway.key(name="emea-member", team="emea")
    assert _refused(gateway, member, "chat-eu-down")["code"] == "region_unavailable"
    anywhere = gateway.key(name="route-anywhere")
    served = openai_sdk(gateway.url, anywhere).chat.completions.with_raw_response.create(model="eu-route", messages=HI)
    assert served.headers["x-breakwater-deployment"] == "d-eu"
    assert "us-routed" not in gateway.us_models()


def test_regions_are_validated_and_shown(gateway: Gateway) -> None:
    r = gateway.admin.post("/admin/keys", json={"name": "bad", "regions": ["EU West"]})
    assert r.status_code == 400
    made = gateway.admin.post("/admin/keys", json={"name": "shown", "regions": ["eu"]}).json()
    assert made["regions"] == ["eu"]
    patched = gateway.admin.patch(f"/admin/keys/{made['id']}", json={"regions": []})
    assert patched.status_code == 200 and patched.json()["regions"] == []


def _rows(gateway: Gateway, where: str, *params: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(gateway.ledger)
    try:
        return db.execute(f"SELECT status, error_class FROM breakwater_ledger WHERE {where}", params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def test_a_branch_in_the_us_is_refused_not_rerouted(gateway: Gateway) -> None:
    """A branching route whose chosen branch is US-only: 503 for the EU key, nothing sent."""
    eu = gateway.key(name="eu-branch", regions=["eu"])
    assert _refused(gateway, eu, "branched")["code"] == "region_unavailable"
    assert "us-branch" not in gateway.us_models()


def test_a_cascade_does_not_escalate_across(gateway: Gateway) -> None:
    """The EU step fails; the strong step is US-only: the cascade stops there."""
    eu = gateway.key(name="eu-cascade", regions=["eu"])
    assert _refused(gateway, eu, "cascaded")["code"] == "region_unavailable"
    assert "us-strong" not in gateway.us_models()


def test_the_history_summariser_stays_in_the_region(gateway: Gateway) -> None:
    """The summarise route is US-only: no summary is written (the turns are dropped), nothing sent."""
    eu = gateway.key(name="eu-trim", regions=["eu"])
    long = " ".join(["the earlier turn says a great deal about many things"] * 6)
    messages: Any = [
        {"role": "user", "content": long},
        {"role": "assistant", "content": long},
        {"role": "user", "content": "hi"},
    ]
    answer = openai_sdk(gateway.url, eu).chat.completions.with_raw_response.create(model="trimmed", messages=messages)
    assert answer.headers["x-breakwater-deployment"] == "d-eu"
    row = _row(gateway.ledger, answer.headers["x-request-id"])
    assert row["trimmed_messages"] == 2 and not row["trim_summary"]
    assert "us-summary" not in gateway.us_models()


def test_a_drift_judge_stays_in_the_region(gateway: Gateway) -> None:
    eu = gateway.key(name="eu-drift", regions=["eu"])
    answer = openai_sdk(gateway.url, eu).chat.completions.with_raw_response.create(model="watched", messages=HI)
    graded = answer.headers["x-request-id"]
    until(lambda: bool(_rows(gateway, "route = 'us-judge' AND tags LIKE ?", f"%{graded}%")), 10, "the judge row")
    assert _rows(gateway, "route = 'us-judge' AND tags LIKE ?", f"%{graded}%") == [(502, "RegionUnavailable")]
    assert "us-judge" not in gateway.us_models()


def test_the_semantic_cache_embedder_stays_in_the_region(gateway: Gateway) -> None:
    """The embeddings route is US-only: the semantic lookup is skipped, the answer served from the EU."""
    eu = gateway.key(name="eu-cache", regions=["eu"])
    answer = openai_sdk(gateway.url, eu).chat.completions.with_raw_response.create(
        model="cached", messages=HI, temperature=0
    )
    assert answer.headers["x-breakwater-deployment"] == "d-eu"
    until(lambda: bool(_rows(gateway, "route = 'us-embed'")), 10, "the embedder's row")
    assert set(_rows(gateway, "route = 'us-embed'")) == {(502, "RegionUnavailable")}
    assert "us-embed" not in gateway.us_models()


def test_batch_lines_are_held_to_the_batch_keys_regions(gateway: Gateway) -> None:
    """A batch made with an EU key: its lines get the EU deployment, or fail, never the US one."""
    eu = gateway.key(name="eu-batch", regions=["eu"])
    client = openai_sdk(gateway.url, eu)
    lines = [
        {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": {"model": model, "messages": HI}}
        for cid, model in (("served", "chat"), ("refused", "chat-eu-down"))
    ]
    content = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    uploaded = client.files.create(file=("in.jsonl", content), purpose="batch")
    before = gateway.us_models().count("us-model")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    final = ("completed", "failed", "expired", "cancelled")
    until(lambda: client.batches.retrieve(batch.id).status in final, 20, "the batch ends")
    done = client.batches.retrieve(batch.id)
    assert done.request_counts is not None and (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    assert done.error_file_id is not None
    failed = [json.loads(line) for line in client.files.content(done.error_file_id).content.splitlines()]
    assert failed[0]["custom_id"] == "refused"
    assert failed[0]["response"]["body"]["error"]["code"] == "region_unavailable"
    assert gateway.us_models().count("us-model") == before


def test_a_broken_stream_is_not_resumed_across(gateway: Gateway) -> None:
    """A stream that breaks mid-way resumes on another deployment: never on one outside the region."""
    eu = gateway.key(name="eu-stream", regions=["eu"])
    stream = openai_sdk(gateway.url, eu).chat.completions.create(
        model="resumed", messages=[{"role": "user", "content": "tell me a long story please"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    assert "us-resume" not in gateway.us_models()
    # the setup works: without the restriction the stream resumes on the US deployment
    anywhere = gateway.key(name="stream-anywhere")
    for _ in openai_sdk(gateway.url, anywhere).chat.completions.create(
        model="resumed", messages=[{"role": "user", "content": "tell me a long story please"}], stream=True
    ):
        pass
    assert "us-resume" in gateway.us_models()


def test_usage_adds_up_by_region(gateway: Gateway) -> None:
    """``/admin/usage?by=region`` (``breakwater usage --by region``): the regions that served."""
    eu, anywhere = gateway.key(name="eu-usage", regions=["eu"]), gateway.key(name="usage-anywhere")
    ids = [
        openai_sdk(gateway.url, k)
        .chat.completions.with_raw_response.create(model="chat", messages=HI)
        .headers["x-request-id"]
        for k in (eu, anywhere)
    ]
    for request_id in ids:
        _row(gateway.ledger, request_id)
    r = gateway.admin.get("/admin/usage", params={"by": "region"})
    assert r.status_code == 200, r.text
    groups = {g["group"]: g["requests"] for g in r.json()["data"]}
    assert groups["eu-west-1"] >= 1 and groups["us-east-1"] >= 1
