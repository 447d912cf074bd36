"""The Redis cache backend end to end: two gateways share entries; a corrupt entry is a miss; Redis
going away mid-run fails no request.

Needs Redis on 127.0.0.1:6379 (skipped when absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``).
The outage goes through a loopback TCP forwarder that is cut and restored (``tests/tcp_proxy.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any
from uuid import uuid4

import openai
import pytest
import redis

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.conftest import require_service
from tests.server.running import openai_sdk, serve
from tests.tcp_proxy import TcpProxy

HOST, PORT = "127.0.0.1", 6379


class ProxyThread:
    """A ``TcpProxy`` to Redis on its own event loop thread, cut and restored from the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy: TcpProxy = self._run(TcpProxy.start(HOST, PORT))

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(10)

    def cut(self) -> None:
        self._run(self.proxy.cut())

    def restore(self) -> None:
        self._run(self.proxy.restore())

    def close(self) -> None:
        self._run(self.proxy.cut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    require_service("Redis", HOST, PORT)
    prefix = f"bwtest:{uuid4().hex}:"
    yield prefix
    with redis.Redis(host=HOST, port=PORT) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(scope="module")
def proxy(namespace: str) -> Iterator[ProxyThread]:
    thread = ProxyThread()
    yield thread
    thread.close()


def _config(redis_port: int, namespace: str) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"enabled": False},
        "redis": {"url": f"redis://{HOST}:{redis_port}/0", "namespace": namespace, "timeout_ms": 200},
        "cache": {"backend": "redis"},
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"cached": {"deployments": ["d"], "cache": {"mode": "exact"}, "retry": {"max_attempts": 1}}},
    }


@pytest.fixture(scope="module")
def gateways(namespace: str, proxy: ProxyThread) -> Iterator[tuple[openai.OpenAI, openai.OpenAI]]:
    """Two gateways on one Redis namespace: the first straight to Redis, the second through the proxy."""
    first = create_app(build_config(_config(PORT, namespace)))
    second = create_app(build_config(_config(proxy.proxy.port, namespace)))
    with serve(first) as a, serve(second) as b:
        yield openai_sdk(a), openai_sdk(b)


def _ask(client: openai.OpenAI, text: str, **headers: str) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="cached", messages=[{"role": "user", "content": text}], temperature=0, extra_headers=headers
    )


def _wait_stored(namespace: str, count: int) -> None:
    deadline = time.monotonic() + 10
    with redis.Redis(host=HOST, port=PORT) as client:
        while len(list(client.scan_iter(match=f"{namespace}cache:*"))) < count:
            assert time.monotonic() < deadline, "the answer never reached Redis"
            time.sleep(0.02)


def test_an_answer_stored_by_one_gateway_is_a_hit_on_the_other(
    gateways: tuple[openai.OpenAI, openai.OpenAI], namespace: str
) -> None:
    """Replicas share entries: a miss on one, then the same request on the other is a hit."""
    first, second = gateways
    asked = _ask(first, "Shared between replicas?")
    assert asked.headers["x-breakwater-cache"] == "miss"
    _wait_stored(namespace, 1)
    hit = _ask(second, "Shared between replicas?")
    assert hit.headers["x-breakwater-cache"] == "hit"
    assert hit.parse().choices[0].message.content == asked.parse().choices[0].message.content


def test_a_corrupt_entry_is_a_miss_and_is_replaced(
    gateways: tuple[openai.OpenAI, openai.OpenAI], namespace: str
) -> None:
    """A value that is not an entry (poisoned, truncated) is served as a miss, never a 500."""
    first, _ = gateways
    _ask(first, "Poison me")
    _wait_stored(namespace, 2)
    with redis.Redis(host=HOST, port=PORT) as client:
        for key in client.scan_iter(match=f"{namespace}cache:*"):
            client.set(key, b"\x00garbage{")
    again = _ask(first, "Poison me")
    assert again.status_code == 200 and again.headers["x-breakwater-cache"] == "miss"


def test_redis_going_away_fails_no_request(
    gateways: tuple[openai.OpenAI, openai.OpenAI], namespace: str, proxy: ProxyThread
) -> None:
    """With Redis unreachable, requests are answered uncached (a miss each) and stores are skipped;
    once it is back, answers are cached again."""
    _, second = gateways
    proxy.cut()
    try:
        for i in range(3):
            answer = _ask(second, f"During the outage {i}")
            assert answer.status_code == 200 and answer.headers["x-breakwater-cache"] == "miss"
    finally:
        proxy.restore()
    _ask(second, "After the outage")
    deadline = time.monotonic() + 10
    while _ask(second, "After the outage").headers["x-breakwater-cache"] != "hit":
        assert time.monotonic() < deadline, "caching did not resume after Redis came back"
        time.sleep(0.05)


def _semantic_config(namespace: str) -> dict[str, Any]:
    config = _config(PORT, namespace)
    config["routes"]["faq"] = {"deployments": ["d"], "cache": {"mode": "semantic"}, "retry": {"max_attempts": 1}}
    return config


def test_replicas_learn_each_others_questions_for_the_semantic_cache(namespace: str) -> None:
    """With the Redis backend, a question one gateway answered is a semantic hit on the other,
    which never saw it: the indexed questions travel on a Redis stream, the answers in the store."""
    first = create_app(build_config(_semantic_config(namespace + "sem:")))
    second = create_app(build_config(_semantic_config(namespace + "sem:")))
    with serve(first) as a, serve(second) as b:
        asked = openai_sdk(a).chat.completions.with_raw_response.create(
            model="faq", messages=[{"role": "user", "content": "How do I reset my password?"}], temperature=0
        )
        assert asked.headers["x-breakwater-cache"] == "miss"
        deadline = time.monotonic() + 15
        while True:  # the other replica reads the stream every 0.5 s: a bounded wait on the condition
            similar = openai_sdk(b).chat.completions.with_raw_response.create(
                model="faq", messages=[{"role": "user", "content": "How can I reset my password?"}], temperature=0,
                extra_headers={"x-breakwater-cache": "no-store"},
            )  # fmt: skip
            if similar.headers["x-breakwater-cache"] == "semantic-hit":
                break
            assert time.monotonic() < deadline, "the second replica never learned the question"
            time.sleep(0.1)
    assert similar.parse().choices[0].message.content == asked.parse().choices[0].message.content
