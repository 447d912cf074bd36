"""Limits, budgets, sessions and the max_tokens guard on a running gateway, as the official SDKs
see them: 429s with Retry-After and OpenAI's x-ratelimit headers, insufficient_quota for spent
budgets and sessions, and the guard's default and cap."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.server.app import create_app
from tests.server.running import admin_http, openai_sdk, serve

ADMIN = "adm-limits-4b7e"
HI: list[Any] = [{"role": "user", "content": "hi"}]
#: USD per million tokens: a mock answer to "hi" costs a few hundred-thousandths of a dollar
PRICE = {"input_per_mtok": "1000", "output_per_mtok": "1000"}


@dataclass
class Gateway:
    url: str
    admin: httpx2.Client
    clock: ManualClock

    def key(self, **spec: Any) -> str:
        r = self.admin.post("/admin/keys", json=spec)
        assert r.status_code == 201, r.text
        key: str = r.json()["key"]
        return key

    def client(self, key: str, **headers: str) -> openai.OpenAI:
        return openai_sdk(self.url, key, default_headers=headers)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("limits")
    config = build_config(
        {
            "server": {"admin_key": "env:BW_ADMIN"},
            "access": {
                "store": f"sqlite:///{tmp}/keys.db",
                "sessions": {"max_calls": 3, "max_spend_usd": "1"},
            },
            "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool")},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "mock-gpt", "price": PRICE}},
            "routes": {
                "fast": {"deployments": ["d"]},
                "guarded": {"deployments": ["d"], "max_tokens": {"default": 3, "cap": 5, "over_cap": "reject"}},
                "clipped": {"deployments": ["d"], "max_tokens": {"cap": 4, "over_cap": "clip"}},
                "narrow": {"deployments": ["d"], "limits": {"rpm": 2}},
            },
        }
    )
    clock = ManualClock(wall=1_795_867_200.0)
    with serve(create_app(config, environ={"BW_ADMIN": ADMIN}, clock=clock)) as url:
        admin = admin_http(url, ADMIN)
        yield Gateway(url, admin, clock)


def test_a_key_over_its_rpm_gets_429_with_openai_headers(gateway: Gateway) -> None:
    """A 2 RPM key: every answer carries x-ratelimit-*; the third request is a 429 'requests' error
    with Retry-After, and a minute later the key is served again."""
    client = gateway.client(gateway.key(limits={"rpm": 2, "tpm": 100_000}))
    first = client.chat.completions.with_raw_response.create(model="fast", messages=HI)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100_000
    client.chat.completions.create(model="fast", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="fast", messages=HI)
    response = caught.value.response
    assert response.headers["retry-after"] == "60"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-should-retry" not in response.headers  # the SDK may retry after Retry-After
    body = caught.value.body
    assert isinstance(body, dict) and (body["type"], body["code"]) == ("requests", "rate_limit_exceeded")
    gateway.clock.advance(60)
    client.chat.completions.create(model="fast", messages=HI)
    metrics = httpx2.get(f"{gateway.url}/metrics").text
    refused = re.search(r'^breakwater_limit_refusals_total\{limit="rpm",scope="key"\} (\S+)$', metrics, re.MULTILINE)
    assert refused is not None and float(refused.group(1)) >= 1
    assert "breakwater_limits_backend_up 1.0" in metrics


def test_a_route_limit_counts_every_caller(gateway: Gateway) -> None:
    """A route's rpm is shared by all keys: two keys together get two requests a minute."""
    a, b = gateway.client(gateway.key()), gateway.client(gateway.key())
    a.chat.completions.create(model="narrow", messages=HI)
    b.chat.completions.create(model="narrow", messages=HI)
    with pytest.raises(openai.RateLimitError, match="model 'narrow'"):
        a.chat.completions.create(model="narrow", messages=HI)
    gateway.clock.advance(60)


def test_a_spent_budget_gets_insufficient_quota(gateway: Gateway) -> None:
    """A key with a tiny budget is refused once its spend reaches it: 429 insufficient_quota,
    x-should-retry false; /admin/budgets shows the spend."""
    made = gateway.admin.post("/admin/keys", json={"limits": {"budget": {"usd": "0.0001", "period": "day"}}}).json()
    client = gateway.client(made["key"])
    for _ in range(20):
        try:
            client.chat.completions.create(model="fast", messages=HI)
        except openai.RateLimitError as exc:
            refused = exc
            break
    else:
        pytest.fail("the budget never ran out")
    body = refused.body
    assert isinstance(body, dict) and (body["type"], body["code"]) == ("insufficient_quota", "budget_exceeded")
    assert refused.response.headers["x-should-retry"] == "false"
    budgets = gateway.admin.get("/admin/budgets", params={"scope": "key", "subject": made["id"]}).json()["data"]
    [row] = budgets
    assert row["budget_usd"] == "0.0001" and row["period"] == "day"
    assert float(row["spent_usd"]) >= 0.0001 and row["used_share"] >= 1.0


def test_a_session_stops_after_its_calls(gateway: Gateway) -> None:
    """x-breakwater-session: three calls are served, the fourth is refused; another session goes on."""
    key = gateway.key()
    looping = gateway.client(key, **{"x-breakwater-session": "agent-run-1"})
    for _ in range(3):
        looping.chat.completions.create(model="fast", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        looping.chat.completions.create(model="fast", messages=HI)
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "session_limit_exceeded"
    gateway.client(key, **{"x-breakwater-session": "agent-run-2"}).chat.completions.create(model="fast", messages=HI)
    gateway.client(key).chat.completions.create(model="fast", messages=HI)  # no session: not capped


def test_the_max_tokens_guard_injects_a_default_and_enforces_a_cap(gateway: Gateway) -> None:
    """No max_tokens: the route's default is sent (the mock stops at 3 tokens); over the cap: 400
    naming max_tokens, or clipped where the route says clip."""
    client = gateway.client(gateway.key())
    answer = client.chat.completions.create(model="guarded", messages=HI)
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    assert answer.choices[0].finish_reason == "length"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="guarded", messages=HI, max_tokens=6)
    body = caught.value.body
    assert isinstance(body, dict) and (body["param"], body["code"]) == ("max_tokens", "max_tokens_over_cap")
    clipped = client.chat.completions.create(model="clipped", messages=HI, max_completion_tokens=50)
    assert clipped.usage is not None and clipped.usage.completion_tokens == 4


def test_x_breakwater_user_cannot_override_the_keys_owner(gateway: Gateway) -> None:
    """A key owned by a user is limited as that user whatever x-breakwater-user says."""
    r = gateway.admin.put("/admin/limits/user/owner-1", json={"rpm": 1})
    assert r.status_code == 200, r.text
    client = gateway.client(gateway.key(user="owner-1"), **{"x-breakwater-user": "someone-else"})
    client.chat.completions.create(model="fast", messages=HI)
    with pytest.raises(openai.RateLimitError, match="user 'owner-1'"):
        client.chat.completions.create(model="fast", messages=HI)
    gateway.clock.advance(60)


def test_a_stream_holds_its_concurrency_slot_until_it_ends(tmp_path: Path) -> None:
    """max_concurrent 1: while a (slow) stream is open a second request is refused; once it has
    ended the slot is free again (the settlement is applied right after the stream's last byte)."""
    config = build_config(
        {
            "server": {"admin_key": "env:BW_ADMIN"},
            "access": {"store": f"sqlite:///{tmp_path}/keys.db"},
            "ledger": {"enabled": False},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
            "routes": {"fast": {"deployments": ["d"]}},
        }
    )
    with serve(create_app(config, environ={"BW_ADMIN": ADMIN})) as url:
        gateway = Gateway(url, admin_http(url, ADMIN), ManualClock())
        client = gateway.client(gateway.key(limits={"max_concurrent": 1}))
        slow = {"x-mock-fault": "token_delay=50"}  # the mock streams a token every 50 ms
        stream = client.chat.completions.create(model="fast", messages=HI, stream=True, extra_headers=slow)
        next(iter(stream))
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="fast", messages=HI)
        body = caught.value.body
        assert isinstance(body, dict) and body["code"] == "concurrency_limit_exceeded"
        assert caught.value.response.headers["retry-after"] == "1"
        for _ in stream:
            pass
        deadline = time.monotonic() + 5
        while True:
            try:
                client.chat.completions.create(model="fast", messages=HI)
                break
            except openai.RateLimitError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)  # polling until the settlement lands, with a deadline
