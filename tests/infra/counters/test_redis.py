"""``RedisCounters`` beyond the shared contract: exact across replicas, and a sick Redis turns into
``CountersUnavailable`` quickly and recovers by itself.

Needs Redis on 127.0.0.1:6379 (skipped when absent, a failure under
``BREAKWATER_REQUIRE_SERVICES=1``); each test has its own key namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis

from breakwater.engine.limits.counters import Adjust, CounterLease, CountersUnavailable, Reading, Release, Window
from breakwater.infra.counters.redis import RedisCounters

from ...tcp_proxy import TcpProxy
from .conftest import HOST, PORT, URL

T = 1_700_000_000.0


def _calls(counters: RedisCounters) -> dict[str, Callable[[], Awaitable[object]]]:
    """One call of each kind that needs Redis."""
    return {
        "acquire": lambda: counters.acquire([Window("w", 10, 1, slot=0), CounterLease("c", 5, "t", T + 30)], T),
        "settle": lambda: counters.settle([Adjust("w", 0, -1)], [Release("c", "t")], T),
        "read": lambda: counters.read([Window("w", 10, 0, slot=0)], T),
        "first": lambda: counters.first("alert", 60, T),
        "ping": counters.ping,
    }


async def _refused_promptly(call: Callable[[], Awaitable[object]], within_s: float = 1.0) -> CountersUnavailable:
    started = time.monotonic()
    with pytest.raises(CountersUnavailable) as caught:
        await call()
    assert time.monotonic() - started < within_s
    return caught.value


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """A loopback server that accepts connections and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []
    done = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await done.wait()

    server = await asyncio.start_server(accept, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        done.set()
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


async def test_two_replicas_admit_exactly_the_limit_under_concurrency(namespace: str) -> None:
    """Two instances (two pools, like two replicas) firing 400 concurrent acquires each admit exactly 300 against a limit of 300."""
    replicas = [RedisCounters(URL, namespace=namespace, timeout_s=5.0) for _ in range(2)]
    window = Window("rpm:alice", 300, 1, slot=42, buckets=60)
    try:
        verdicts = await asyncio.gather(*(r.acquire([window], T) for r in replicas for _ in range(400)))
        assert sum(v.admitted for v in verdicts) == 300
        assert sorted(v.readings[0].count for v in verdicts if v.admitted) == list(range(1, 301))
        assert await replicas[0].read([window], T) == [Reading(300, oldest=42)]
    finally:
        for r in replicas:
            await r.close()


async def test_two_replicas_hold_exactly_the_lease_limit_under_concurrency(namespace: str) -> None:
    """Concurrent leases from two instances never hold more than the limit."""
    replicas = [RedisCounters(URL, namespace=namespace, timeout_s=5.0) for _ in range(2)]
    try:
        verdicts = await asyncio.gather(
            *(
                r.acquire([CounterLease("conc:alice", 50, f"r{n}-{i}", T + 60)], T)
                for n, r in enumerate(replicas)
                for i in range(200)
            )
        )
        assert sum(v.admitted for v in verdicts) == 50
    finally:
        for r in replicas:
            await r.close()


async def test_an_unreachable_redis_raises_counters_unavailable_promptly() -> None:
    """With nothing listening, every call raises ``CountersUnavailable`` well within a second."""
    counters = RedisCounters(f"redis://{HOST}:{_closed_port()}/0", timeout_s=0.2)
    try:
        for call in _calls(counters).values():
            error = await _refused_promptly(call)
            assert isinstance(error.__cause__, (redis.RedisError, OSError))
    finally:
        await counters.close()


async def test_a_redis_that_never_answers_times_out() -> None:
    """A server that accepts but never replies costs each call its timeout, then ``CountersUnavailable``."""
    async with _silent_server() as port:
        counters = RedisCounters(f"redis://{HOST}:{port}/0", timeout_s=0.2)
        try:
            for call in _calls(counters).values():
                await _refused_promptly(call)
        finally:
            await counters.close()


async def test_the_password_in_the_url_stays_out_of_errors() -> None:
    """The error and its cause name Redis, never the URL's password."""
    counters = RedisCounters(f"redis://:hunter2-secret@{HOST}:{_closed_port()}/0", timeout_s=0.2)
    try:
        error = await _refused_promptly(counters.ping)
        assert "Redis" in str(error)
        assert "hunter2" not in f"{error} {error.__cause__!r} {error.__cause__}"
    finally:
        await counters.close()


async def test_calls_fail_while_redis_is_cut_off_and_work_again_once_it_is_back(namespace: str) -> None:
    """Cut off (connections reset, port closed), every call raises within its bound; restored, calls work again on fresh connections.

    The contract is that the next calls work again: the first call after the restore may still
    meet a dead pooled connection, so a few attempts are allowed before the first success.
    """
    proxy = await TcpProxy.start(HOST, PORT)
    counters = RedisCounters(f"redis://{HOST}:{proxy.port}/0", namespace=namespace, timeout_s=0.2)
    window = Window("rpm", 10, 1, slot=0)
    try:
        assert (await counters.acquire([window], T)).admitted
        await proxy.cut()
        for call in _calls(counters).values():
            await _refused_promptly(call)
        await proxy.restore()
        for _attempt in range(3):
            try:
                await counters.ping()
                break
            except CountersUnavailable:
                continue
        else:
            pytest.fail("Redis did not answer again after the restore")
        assert (await counters.acquire([window], T)).readings[0] == Reading(2, oldest=0)
    finally:
        await counters.close()
        await proxy.cut()


async def test_the_namespace_keeps_two_instances_apart(namespace: str) -> None:
    """Two namespaces on one Redis count the same engine key separately, each under its own prefix."""
    other = f"{namespace}other:"
    first, second = RedisCounters(URL, namespace=namespace), RedisCounters(URL, namespace=other)
    try:
        assert (await first.acquire([Window("rpm", 1, 1, slot=0)], T)).admitted
        assert (await second.acquire([Window("rpm", 1, 1, slot=0)], T)).admitted
        assert not (await first.acquire([Window("rpm", 1, 1, slot=0)], T)).admitted
        with redis.Redis(host=HOST, port=PORT) as raw:
            assert raw.hgetall(f"{namespace}rpm") == {b"0": b"1"}
            assert raw.hgetall(f"{other}rpm") == {b"0": b"1"}
            assert not raw.exists("rpm")
    finally:
        await first.close()
        await second.close()


async def test_scripts_are_reloaded_after_redis_forgets_them(namespace: str) -> None:
    """After SCRIPT FLUSH (as after a Redis restart) the next acquire loads its script again and succeeds."""
    counters = RedisCounters(URL, namespace=namespace, timeout_s=1.0)
    try:
        assert (await counters.acquire([Window("rpm", 5, 1, slot=0)], T)).admitted
        with redis.Redis(host=HOST, port=PORT) as raw:
            raw.script_flush()
        assert (await counters.acquire([Window("rpm", 5, 1, slot=0)], T)).readings[0].count == 2
    finally:
        await counters.close()
