"""Provider prompt caching, end to end on the mock (which reports cached tokens as the providers
do): automatic Anthropic breakpoints, and the cached and written tokens in the ledger and its cost."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakwater.core.config import ConfigError, build_config
from breakwater.server.app import create_app
from tests.server.running import openai_sdk, serve
from tests.server.test_ledger import _row

#: a long, stable system prompt: well over 1024 tokens
SYSTEM = "You are the support assistant of Example Corp. " + " ".join(f"Policy {i}: be precise." for i in range(400))
PRICE = {
    "input_per_mtok": "3",
    "output_per_mtok": "15",
    "cached_input_per_mtok": "0.30",
    "cache_write_per_mtok": "3.75",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("prompt-cache")
    config: dict[str, Any] = {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"claude": {"type": "mock", "wire": "anthropic"}, "gpt": {"type": "mock", "wire": "openai"}},
        "deployments": {
            "auto": {"provider": "claude", "model": "mock-claude", "prompt_cache": {"auto": True}, "price": PRICE},
            "plain": {"provider": "claude", "model": "mock-claude", "price": PRICE},
            "implicit": {"provider": "gpt", "model": "mock-gpt", "price": PRICE},
        },
        "routes": {
            "claude-auto": {"deployments": ["auto"]},
            "claude-plain": {"deployments": ["plain"]},
            "gpt": {"deployments": ["implicit"]},
        },
    }
    with serve(create_app(build_config(config))) as url:
        yield url, tmp / "ledger.db"


def _ask(url: str, model: str, question: str) -> Any:
    return openai_sdk(url).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    )


def test_automatic_breakpoints_write_then_read_the_prefix(gateway: tuple[str, Path]) -> None:
    """An Anthropic deployment with prompt_cache.auto: the first request writes the system prompt to
    the provider's cache, the next reads it; the ledger holds both counts and prices them."""
    url, ledger = gateway
    first = _row(ledger, _ask(url, "claude-auto", "First question?").headers["x-request-id"])
    second_answer = _ask(url, "claude-auto", "Second question?")
    second = _row(ledger, second_answer.headers["x-request-id"])
    assert first["cache_write_tokens"] > 1024 and first["cached_input_tokens"] == 0
    assert second["cached_input_tokens"] == first["cache_write_tokens"] and second["cache_write_tokens"] == 0
    assert second_answer.parse().usage.prompt_tokens_details.cached_tokens == second["cached_input_tokens"]
    assert Decimal(second["cost_usd"]) < Decimal(first["cost_usd"]) / 2  # reads cost a tenth of input


def test_without_auto_nothing_is_marked_and_nothing_cached(gateway: tuple[str, Path]) -> None:
    """The same requests on a deployment without prompt_cache carry no breakpoint: no cache counts."""
    url, ledger = gateway
    rows = [_row(ledger, _ask(url, "claude-plain", q).headers["x-request-id"]) for q in ("One?", "Two?")]
    assert all(r["cached_input_tokens"] == 0 and r["cache_write_tokens"] == 0 for r in rows)


def test_openai_caches_long_prefixes_on_its_own(gateway: tuple[str, Path]) -> None:
    """An OpenAI deployment needs no breakpoint: a repeated long prefix comes back as cached tokens,
    in 128-token steps."""
    url, ledger = gateway
    _ask(url, "gpt", "Warm the prefix?")
    row = _row(ledger, _ask(url, "gpt", "Then ask again?").headers["x-request-id"])
    assert row["cached_input_tokens"] >= 1024 and row["cached_input_tokens"] % 128 == 0


def test_automatic_breakpoints_are_for_anthropic_deployments_only() -> None:
    """prompt_cache.auto on an OpenAI-wire deployment is a config error naming the key."""
    with pytest.raises(ConfigError) as caught:
        build_config(
            {
                "providers": {"o": {"type": "openai", "host": "openai", "api_key": "env:K"}},
                "deployments": {"d": {"provider": "o", "model": "gpt-4o", "prompt_cache": {"auto": True}}},
                "routes": {"r": {"deployments": ["d"]}},
            }
        )
    assert "deployments.d.prompt_cache" in str(caught.value)
