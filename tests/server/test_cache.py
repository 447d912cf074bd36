"""The exact answer cache end to end: the official SDKs call a running gateway twice and see the
second answer come from the cache (no upstream call), in either form (plain or streamed), with
its headers, its ledger row (cost 0, the saved cost) and its tenant boundary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.server.app import create_app
from tests.server.conftest import NO_BREAKER, ONE_SHOT, PRICE
from tests.server.running import admin_http, anthropic_sdk, openai_sdk, serve
from tests.server.test_ledger import _row

ADMIN = "adm-cache-5d1e"
EXACT = {"mode": "exact"}
#: temperature 0 (this Anthropic SDK has no parameter for it any more; the wire still takes it)
ZERO = {"temperature": 0}


@dataclass
class Gateway:
    url: str
    ledger: Path
    clock: ManualClock
    admin: httpx2.Client

    def key(self, name: str, **spec: Any) -> str:
        r = self.admin.post("/admin/keys", json={"name": name, **spec})
        assert r.status_code == 201, r.text
        key: str = r.json()["key"]
        return key

    def openai(self, key: str) -> openai.OpenAI:
        return openai_sdk(self.url, key)

    def anthropic(self, key: str) -> anthropic.Anthropic:
        return anthropic_sdk(self.url, key)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, mock_server_url: str) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("cache")
    remote = {"type": "openai", "host": "mock", "base_url": f"{mock_server_url}/v1", "api_key": "env:UP_KEY"}
    config: dict[str, Any] = {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"store": f"sqlite:///{tmp}/keys.db"},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {
            "remote": remote,
            "claude": {"type": "anthropic", "host": "mock", "base_url": mock_server_url, "api_key": "env:UP_KEY"},
            "inproc": {"type": "mock"},
        },
        "deployments": {
            "r": {"provider": "remote", "model": "mock-gpt", "price": PRICE},
            "c": {"provider": "claude", "model": "mock-claude", "price": PRICE},
            "m": {"provider": "inproc", "model": "mock-gpt", "price": PRICE},
        },
        "routes": {
            "cached": {"deployments": ["r"], "cache": EXACT},
            "cached-claude": {"deployments": ["c"], "cache": EXACT},
            "cached-inproc": {"deployments": ["m"], "cache": EXACT},
            "cached-all": {"deployments": ["r"], "cache": {"mode": "exact", "qualify": "all"}},
            "cached-shared": {"deployments": ["r"], "cache": {"mode": "exact", "scope": "shared"}},
            "cached-team": {"deployments": ["r"], "cache": {"mode": "exact", "scope": "team"}},
            "cached-short": {"deployments": ["r"], "cache": {"mode": "exact", "ttl_s": 60, "stale_if_error_s": 600}},
            "cached-tiny": {"deployments": ["r"], "cache": {"mode": "exact", "max_entry_bytes": 100}},
            "cached-embed": {"deployments": ["m"], "cache": EXACT},
            "uncached": {"deployments": ["r"]},
        },
    }
    for route in config["routes"].values():
        route.update(ONE_SHOT)
    for deployment in config["deployments"].values():
        deployment.update(NO_BREAKER)
    clock = ManualClock(wall=1_795_867_200.0)
    environ = {"BW_ADMIN": ADMIN, "UP_KEY": "sk-upstream-cache-test"}
    app = create_app(build_config(config), environ=environ, clock=clock)
    with serve(app) as url:
        yield Gateway(url, tmp / "ledger.db", clock, admin_http(url, ADMIN))


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.key("cache-tests")


def _ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _create(client: openai.OpenAI, model: str, text: str, **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(model=model, messages=_ask(text), temperature=0, **extra)


def _stored(gateway: Gateway, client: openai.OpenAI, model: str, text: str, **extra: Any) -> Any:
    """Ask once (a miss) and wait until the answer is in the cache (it is stored in the background)."""
    first = _create(client, model, text, **extra)
    assert first.headers["x-breakwater-cache"] == "miss"
    deadline = time.monotonic() + 10
    while True:
        again = _create(client, model, text, **extra)
        if again.headers["x-breakwater-cache"] == "hit":
            return first
        assert time.monotonic() < deadline, "the answer was never stored"
        time.sleep(0.02)


def test_the_second_identical_request_is_a_hit_that_calls_no_upstream(gateway: Gateway, key: str) -> None:
    """A hit answers with the stored body even though the upstream would now fail, says so in its
    headers, and its ledger row shows no upstream call, cost 0 and the cost it saved."""
    client = gateway.openai(key)
    first = _stored(gateway, client, "cached", "What is the capital of France?")
    hit = client.chat.completions.with_raw_response.create(
        model="cached",
        messages=_ask("What is the capital of France?"),
        temperature=0,
        extra_headers={"x-mock-fault": "status=500"},  # the upstream would fail now
    )
    assert hit.headers["x-breakwater-cache"] == "hit"
    assert int(hit.headers["x-breakwater-cache-age"]) >= 0
    assert "x-breakwater-deployment" not in hit.headers
    assert hit.parse().model_dump() == first.parse().model_dump()
    row = _row(gateway.ledger, hit.headers["x-request-id"])
    assert (row["cache"], row["status"], row["attempts"], row["deployment"]) == ("hit", 200, 0, "")
    assert (row["input_tokens"], row["output_tokens"], Decimal(row["cost_usd"])) == (0, 0, Decimal(0))
    usage = first.parse().usage
    saved = (Decimal(usage.prompt_tokens) * Decimal("1.25") + Decimal(usage.completion_tokens) * 10) / 10**6
    assert Decimal(row["saved_usd"]) == saved
    miss_row = _row(gateway.ledger, first.headers["x-request-id"])
    assert miss_row["cache"] == "miss" and miss_row["saved_usd"] is None and Decimal(miss_row["cost_usd"]) == saved


def test_a_streamed_request_replays_a_stored_answer_as_a_well_formed_stream(gateway: Gateway, key: str) -> None:
    """A stream asked after a plain answer was stored is replayed through the OpenAI SDK: same text,
    the finish reason, usage when asked for, and the hit in the ledger."""
    client = gateway.openai(key)
    first = _stored(gateway, client, "cached", "Name three colours.").parse()
    with client.chat.completions.with_streaming_response.create(
        model="cached",
        messages=_ask("Name three colours."),
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-breakwater-cache"] == "hit"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == first.usage.completion_tokens
    row = _row(gateway.ledger, response.headers["x-request-id"])
    assert row["cache"] == "hit" and row["stream"] == 1


def test_a_streamed_miss_fills_the_cache_for_a_plain_request(gateway: Gateway, key: str) -> None:
    """A stream that finished normally is stored from its assembled answer and serves a later plain
    request with the same text."""
    client = gateway.openai(key)
    question = _ask("Stream me a haiku about tides.")
    stream = client.chat.completions.create(model="cached", messages=question, temperature=0, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    deadline = time.monotonic() + 10
    while True:
        plain = client.chat.completions.with_raw_response.create(model="cached", messages=question, temperature=0)
        if plain.headers["x-breakwater-cache"] == "hit":
            break
        assert time.monotonic() < deadline, "the streamed answer was never stored"
        time.sleep(0.02)
    assert plain.parse().choices[0].message.content == streamed


def test_a_cut_stream_is_not_stored(gateway: Gateway, key: str) -> None:
    """A stream the upstream cut short ends with an error, and the next request is a miss again."""
    client = gateway.openai(key)
    question = _ask("Tell me a long story about lighthouses.")
    with pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model="cached",
            messages=question,
            temperature=0,
            stream=True,
            extra_headers={"x-mock-fault": "cut_after=2"},
        )
        for _ in stream:
            pass
    again = client.chat.completions.with_raw_response.create(
        model="cached", messages=question, temperature=0, extra_headers={"x-breakwater-cache": "no-store"}
    )
    assert again.headers["x-breakwater-cache"] == "miss"


def test_the_anthropic_sdk_gets_hits_in_its_own_format_plain_and_streamed(gateway: Gateway, key: str) -> None:
    """/v1/messages caches too: a repeated Messages request is a hit, and a streamed one is replayed
    as Anthropic events with the same text."""
    client = gateway.anthropic(key)

    def ask() -> Any:
        return client.messages.with_raw_response.create(
            model="cached-claude", max_tokens=64, messages=_ask("Say something about owls."), extra_body=ZERO
        )

    first = ask()
    assert first.headers["x-breakwater-cache"] == "miss"
    deadline = time.monotonic() + 10
    while (hit := ask()).headers["x-breakwater-cache"] != "hit":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert hit.parse().content[0].text == first.parse().content[0].text
    with client.messages.stream(
        model="cached-claude", max_tokens=64, messages=_ask("Say something about owls."), extra_body=ZERO
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == first.parse().content[0].text
    assert final.stop_reason == first.parse().stop_reason


def test_non_deterministic_requests_bypass_the_cache_unless_the_route_caches_all(gateway: Gateway, key: str) -> None:
    """Without temperature 0 or a seed a request is not cached (``bypass``); a seed qualifies it;
    a route with ``qualify: all`` caches it anyway."""
    client = gateway.openai(key)
    plain = client.chat.completions.with_raw_response.create(model="cached", messages=_ask("Any idea?"))
    assert plain.headers["x-breakwater-cache"] == "bypass"
    seeded = client.chat.completions.with_raw_response.create(model="cached", messages=_ask("Any idea?"), seed=7)
    assert seeded.headers["x-breakwater-cache"] == "miss"
    everything = client.chat.completions.with_raw_response.create(model="cached-all", messages=_ask("Any idea?"))
    assert everything.headers["x-breakwater-cache"] == "miss"
    untouched = client.chat.completions.with_raw_response.create(model="uncached", messages=_ask("Any idea?"))
    assert "x-breakwater-cache" not in untouched.headers


def test_directives_skip_the_lookup_skip_the_store_and_bad_ones_are_a_400(gateway: Gateway, key: str) -> None:
    """``no-cache`` answers from upstream even with an entry stored; ``no-store`` keeps the answer
    out; the body field works like the header; an unknown directive is a 400 in OpenAI's format."""
    client = gateway.openai(key)
    _stored(gateway, client, "cached", "Directive test question")
    fresh = client.chat.completions.with_raw_response.create(
        model="cached", messages=_ask("Directive test question"), temperature=0,
        extra_headers={"x-breakwater-cache": "no-cache"},
    )  # fmt: skip
    assert fresh.headers["x-breakwater-cache"] == "bypass" and "x-breakwater-deployment" in fresh.headers
    by_body = client.chat.completions.with_raw_response.create(
        model="cached", messages=_ask("Directive test question"), temperature=0,
        extra_body={"breakwater_cache": "no-cache"},
    )  # fmt: skip
    assert by_body.headers["x-breakwater-cache"] == "bypass"
    assert "x-breakwater-dropped-params" not in by_body.headers
    for value in ("no-cache", "no-store"):
        done = client.chat.completions.with_raw_response.create(
            model="cached", messages=_ask(f"Never stored {value}"), temperature=0,
            extra_headers={"x-breakwater-cache": "no-store"},
        )  # fmt: skip
        assert done.headers["x-breakwater-cache"] == "miss"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="cached", messages=_ask("x"), temperature=0, extra_headers={"x-breakwater-cache": "max-age=5"}
        )
    body = caught.value.body
    assert isinstance(body, dict) and "unknown directive 'max-age=5'" in body["message"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="cached", messages=_ask("x"), temperature=0, extra_headers={"x-breakwater-cache": "ttl=-1"}
        )


def test_no_answer_crosses_a_tenant_boundary(gateway: Gateway) -> None:
    """On a per-key route another key's stored answer is a miss; on a team route a teammate's is a
    hit and an outsider's a miss; on a shared route every key hits."""
    gateway.admin.post("/admin/teams", json={"name": "blue"}).raise_for_status()
    alice, bob = gateway.key("alice", team="blue"), gateway.key("bob", team="blue")
    carol = gateway.key("carol")
    question = "Which tenant am I?"
    _stored(gateway, gateway.openai(alice), "cached", question)
    assert _create(gateway.openai(bob), "cached", question).headers["x-breakwater-cache"] == "miss"
    _stored(gateway, gateway.openai(alice), "cached-team", question)
    assert _create(gateway.openai(bob), "cached-team", question).headers["x-breakwater-cache"] == "hit"
    assert _create(gateway.openai(carol), "cached-team", question).headers["x-breakwater-cache"] == "miss"
    _stored(gateway, gateway.openai(alice), "cached-shared", question)
    assert _create(gateway.openai(carol), "cached-shared", question).headers["x-breakwater-cache"] == "hit"


def test_an_expired_entry_is_a_miss_and_served_stale_only_when_every_upstream_fails(gateway: Gateway, key: str) -> None:
    """Past its TTL an entry is not served; within the route's stale-if-error window it is served,
    marked ``stale``, when the upstream fails, and the failure is an error without it."""
    client = gateway.openai(key)
    _stored(gateway, client, "cached-short", "Stale question")
    gateway.clock.advance(120)  # past ttl_s 60, inside stale_if_error_s 600
    failing = {"x-mock-fault": "status=503", "x-breakwater-cache": "no-store"}
    stale = client.chat.completions.with_raw_response.create(
        model="cached-short", messages=_ask("Stale question"), temperature=0, extra_headers=failing
    )
    assert stale.headers["x-breakwater-cache"] == "stale"
    assert int(stale.headers["x-breakwater-cache-age"]) >= 120
    row = _row(gateway.ledger, stale.headers["x-request-id"])
    assert row["cache"] == "stale" and Decimal(row["cost_usd"]) == 0 and Decimal(row["saved_usd"]) > 0
    gateway.clock.advance(1000)  # past the stale window too
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="cached-short", messages=_ask("Stale question"), temperature=0, extra_headers=failing
        )


def test_an_answer_over_the_entry_limit_is_not_stored(gateway: Gateway, key: str) -> None:
    """``max_entry_bytes`` keeps large answers out: the same request stays a miss."""
    client = gateway.openai(key)
    for _ in range(2):
        assert _create(client, "cached-tiny", "Too big to keep").headers["x-breakwater-cache"] == "miss"
    metrics = httpx2.get(f"{gateway.url}/metrics").text
    assert "breakwater_cache_too_large_total" in metrics


def test_metrics_count_hits_and_misses_by_route(gateway: Gateway, key: str) -> None:
    """/metrics has the cache results by route, the stores, and the memory store's size."""
    client = gateway.openai(key)
    _stored(gateway, client, "cached-inproc", "Metrics question")
    hit = 'breakwater_cache_requests_total{result="hit",route="cached-inproc"}'
    deadline = time.monotonic() + 10
    while hit not in (metrics := httpx2.get(f"{gateway.url}/metrics").text):  # counted once the exchange ends
        assert time.monotonic() < deadline, metrics
        time.sleep(0.02)
    assert 'breakwater_cache_requests_total{result="miss",route="cached-inproc"}' in metrics
    assert "breakwater_cache_stores_total" in metrics
    assert 'breakwater_cache_entries{backend="memory"}' in metrics


def test_a_hit_counts_against_request_rate_but_spends_no_budget(gateway: Gateway) -> None:
    """Hits are requests (a key's rpm refuses the one over it) but cost nothing: the key's budget
    holds exactly the spend of the calls that went upstream."""
    made = gateway.admin.post(
        "/admin/keys", json={"name": "limited", "limits": {"rpm": 4, "budget": {"usd": "10", "period": "day"}}}
    ).json()
    client = gateway.openai(made["key"])
    answers = [_create(client, "cached-inproc", "Budget question") for _ in range(4)]
    results = [a.headers["x-breakwater-cache"] for a in answers]
    misses = results.count("miss")
    assert results[0] == "miss" and results[-1] == "hit" and set(results) == {"miss", "hit"}
    with pytest.raises(openai.RateLimitError):
        _create(client, "cached-inproc", "Budget question")  # the fifth request in the minute
    # the access stage settles in the same step as the ledger row is submitted (pipeline.end):
    # once the last row is written, every settlement has been applied
    _row(gateway.ledger, answers[-1].headers["x-request-id"])
    usage = answers[0].parse().usage
    per_call = (Decimal(usage.prompt_tokens) * Decimal("1.25") + Decimal(usage.completion_tokens) * 10) / 10**6
    budgets = gateway.admin.get("/admin/budgets", params={"scope": "key", "subject": made["id"]}).json()["data"]
    assert Decimal(budgets[0]["spent_usd"]) == per_call * misses


def test_embeddings_are_cached_by_their_input(gateway: Gateway, key: str) -> None:
    """The same embeddings request is a hit with the same vectors (no qualification needed); other
    inputs or dimensions are misses; a hit is answered in the encoding the request asks for."""
    client = gateway.openai(key)

    def embed(text: str, **extra: Any) -> Any:
        return client.embeddings.with_raw_response.create(model="cached-embed", input=[text], **extra)

    first = embed("a sentence to embed")
    assert first.headers["x-breakwater-cache"] == "miss"
    deadline = time.monotonic() + 10
    while (hit := embed("a sentence to embed")).headers["x-breakwater-cache"] != "hit":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert hit.parse().data[0].embedding == first.parse().data[0].embedding
    assert embed("another sentence").headers["x-breakwater-cache"] == "miss"
    assert embed("a sentence to embed", dimensions=8).headers["x-breakwater-cache"] == "miss"
    row = _row(gateway.ledger, hit.headers["x-request-id"])
    assert row["cache"] == "hit" and Decimal(row["cost_usd"]) == 0
