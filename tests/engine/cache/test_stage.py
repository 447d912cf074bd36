"""The cache stage around a stub call: corrupt entries, an unreachable store, a second identical request."""

from __future__ import annotations

import random
from typing import Any

import pytest

from breakwater.core.config import build_config
from breakwater.core.types import ChatRequest, ChatResponse, Choice, Message, TextPart, Usage
from breakwater.engine.cache.key import cache_key, tenant_of
from breakwater.engine.cache.stage import CacheStage
from breakwater.engine.cache.store import CacheUnavailable
from breakwater.engine.context import Caller, RequestContext
from breakwater.infra.cache.memory import MemoryCacheStore
from breakwater.infra.clock import ManualClock
from breakwater.infra.http import AiohttpSender
from breakwater.providers import openai_serve
from breakwater.runtime.wiring import Wiring

ANSWER = ChatResponse("c1", "m", 1, [Choice(0, Message("assistant", [TextPart("Four.")]), "stop")], Usage(5, 2))


def _stage(store: Any) -> tuple[CacheStage, list[int]]:
    config = build_config(
        {
            "access": {"enabled": False},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
            "routes": {"faq": {"deployments": ["d"], "cache": {"mode": "exact"}}},
        }
    )
    clock = ManualClock()
    router = Wiring(config, {}, AiohttpSender(), clock, random.Random(0)).router()
    return CacheStage(router, store, clock), []


def _request() -> ChatRequest:
    return openai_serve.decode_chat_request(
        {"model": "faq", "temperature": 0, "messages": [{"role": "user", "content": "2+2?"}]}
    )


async def test_a_corrupt_memory_entry_is_a_miss_and_is_deleted() -> None:
    """A value that is not an entry answers as a miss (the call is made) and is removed from the store."""
    store = MemoryCacheStore(1 << 20)
    stage, calls = _stage(store)
    route = stage.router.routes["faq"]
    key = cache_key(_request(), route.cache_fingerprint, tenant_of(Caller(), "key"))
    store.set_now(key, b"\x00not an entry", 60)

    async def call(request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        calls.append(1)
        return ANSWER

    ctx = RequestContext("r1")
    assert await stage.chat(call)(_request(), ctx) is ANSWER
    assert ctx.cache is not None and ctx.cache.status == "miss" and calls == [1]
    await stage.drain()
    assert stage.counts.corrupt == 1
    again = RequestContext("r2")
    await stage.chat(call)(_request(), again)  # the answer stored by the miss replaced it
    assert again.cache is not None and again.cache.status == "hit" and calls == [1]


class Down:
    """A store that never answers in time."""

    backend = "redis"

    async def get(self, key: str) -> bytes | None:
        raise CacheUnavailable("Redis did not answer (TimeoutError)")

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        raise CacheUnavailable("Redis did not answer (TimeoutError)")

    async def delete(self, key: str) -> None:
        raise CacheUnavailable("Redis did not answer (TimeoutError)")

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("attempt", [1, 2])
async def test_an_unreachable_store_makes_every_request_a_miss_not_a_failure(attempt: int) -> None:
    """Lookups and stores that fail are counted, and the request is answered by the call."""
    stage, calls = _stage(Down())

    async def call(request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        calls.append(1)
        return ANSWER

    for i in range(attempt):
        ctx = RequestContext(f"r{i}")
        assert await stage.chat(call)(_request(), ctx) is ANSWER
        assert ctx.cache is not None and ctx.cache.status == "miss"
    await stage.drain()
    assert len(calls) == attempt and stage.counts.unavailable == 2 * attempt
