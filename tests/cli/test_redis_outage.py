"""Redis stopped under two loaded replicas, then started again (issue 6).

The replicas share a private ``redis-server`` the test starts on a free port (no persistence), so
it can be stopped and started again on that port without touching the Redis other work uses.
Limits fail open (the default): while Redis is gone each replica counts on local memory, says so
in ``/readyz`` and ``/metrics``, and keeps answering at once; a probe every 0.2 s notices Redis
is back, and counting is shared again. Needs the ``redis-server`` binary (skipped without it,
unless ``BREAKWATER_REQUIRE_SERVICES=1``). Waits poll a condition against a deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.cli.replicas import (
    ROUTE,
    Load,
    Outcome,
    Replica,
    create_key,
    gauge,
    metric,
    percentile,
    replicas,
    tally,
    wait_accepted,
)
from tests.cli.test_cli import _free_port

HI: dict[str, Any] = {
    "model": ROUTE,
    "messages": [{"role": "user", "content": "hello world how are you"}],
    "max_tokens": 5,
}
DEGRADED = "degraded: counting locally"


class RedisServer:
    """A private ``redis-server`` on one loopback port, without persistence; stopped and started
    again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.directory / f"redis-{self.port}.log"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", *args, "--dir", str(self.directory), "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server did not start listening")
                time.sleep(0.02)  # polling a condition with a deadline, not a fixed wait

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        reason = "the redis-server binary is not installed"
        if os.environ.get("BREAKWATER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; BREAKWATER_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class Sample:
    """What one replica said about its limits at one moment."""

    at: float
    replica: int
    ready_status: int
    state: str
    backend_up: float
    local_admissions: float


@dataclass
class Run:
    """The outage as it happened: when Redis went and came back, what the replicas said, and
    every answer of the load."""

    down_at: float = 0.0
    up_at: float = 0.0
    local_before: tuple[float, ...] = ()
    samples: list[Sample] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


async def _until(check: Callable[[], Awaitable[bool]], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)  # polling a condition with a deadline, not a fixed wait


async def _outage(group: list[Replica], redis: RedisServer, key: str) -> Run:
    """Load on both replicas; Redis stopped once they are busy, for at least 3 s and until both
    count locally; started again; the load ends once both count in Redis again."""
    run = Run()
    samples = run.samples
    load = Load(group, key, HI, concurrency=32)
    sending = asyncio.create_task(load.run(until_s=90))

    async with httpx.AsyncClient(timeout=10) as client:

        async def sample() -> list[Sample]:
            now = []
            for index, replica in enumerate(group):
                ready = await client.get(f"{replica.url}/readyz")
                text = (await client.get(f"{replica.url}/metrics")).text
                now.append(
                    Sample(
                        time.monotonic(),
                        index,
                        ready.status_code,
                        ready.json()["limits"]["state"],
                        metric(text, "breakwater_limits_backend_up"),
                        metric(text, "breakwater_limits_local_admissions"),
                    )
                )
            samples.extend(now)
            return now

        async def busy() -> bool:
            await sample()
            return len(load.outcomes) >= 200 or sending.done()

        await _until(busy, 30, "200 requests were answered with Redis up")
        run.local_before = tuple(s.local_admissions for s in await sample())
        assert all(s.state == "ok" and s.backend_up == 1 for s in samples), "Redis was up at first"

        run.down_at = time.monotonic()
        await asyncio.to_thread(redis.stop)
        answered_at_stop = len(load.outcomes)

        async def counting_locally() -> bool:
            now = await sample()
            return (
                all(
                    s.state == DEGRADED and s.backend_up == 0 and s.local_admissions > run.local_before[s.replica]
                    for s in now
                )
                and time.monotonic() - run.down_at >= 3.0
                and len(load.outcomes) >= answered_at_stop + 300
            ) or sending.done()

        await _until(counting_locally, 30, "both replicas counted locally for 3 s and 300 requests")

        await asyncio.to_thread(redis.start)  # returns once it accepts connections
        run.up_at = time.monotonic()

        async def recovered() -> bool:
            now = await sample()
            return all(s.state == "ok" and s.backend_up == 1 for s in now) or sending.done()

        await _until(recovered, 30, "both replicas count in Redis again")
        load.stop()
        await sending
    run.outcomes = load.outcomes
    return run


def test_redis_stopped_mid_load_fails_nothing_and_counting_resumes(redis_server: RedisServer, tmp_path: Path) -> None:
    """Redis stopped under load: every request still gets a 200 at once (p99 far below a
    second), both replicas say they count locally (readyz 200 "degraded", backend_up 0, local
    admissions growing); once Redis is started again both say "ok" and a new 20 RPM key used
    through both replicas is admitted exactly 20 times, counted in Redis again."""
    started = time.monotonic()
    with replicas(tmp_path, redis_server.url, "bwtest-outage:", probe_s=0.2) as group:
        a, b = group
        key = create_key(a, name="generous", limits={"rpm": 100_000})["key"]
        wait_accepted(b, key)
        run = asyncio.run(_outage(group, redis_server, key))

        strict = create_key(a, name="strict", limits={"rpm": 20})["key"]
        wait_accepted(b, strict, limit_s=30)  # B may learn it by polling the store if pub/sub is reconnecting
        local_before = [gauge(r, "breakwater_limits_local_admissions") for r in group]
        after = asyncio.run(Load(group, strict, HI, concurrency=16, attempts=60).run())
        local_after = [gauge(r, "breakwater_limits_local_admissions") for r in group]

    ok, refused, other = tally(run.outcomes)
    during = [o.latency_s for o in run.outcomes if run.down_at <= o.started <= run.up_at]
    before = [o.latency_s for o in run.outcomes if o.started < run.down_at]
    p99 = percentile(during, 0.99)
    outage_samples = [s for s in run.samples if run.down_at < s.at <= run.up_at]
    last = {s.replica: s for s in run.samples}
    grown = [last[i].local_admissions - run.local_before[i] for i in (0, 1)]
    after_ok, after_refused, after_other = tally(after)
    print(
        f"outage: {len(run.outcomes)} requests ({len(during)} while Redis was down for "
        f"{run.up_at - run.down_at:.1f} s), {len(ok)} answered 200; p99 during the outage {p99 * 1000:.1f} ms (before it "
        f"{percentile(before, 0.99) * 1000:.1f} ms), "
        f"max {max(during) * 1000:.1f} ms; local admissions grew by {grown}; after recovery a 20 RPM key got "
        f"{len(after_ok)} of {len(after)}; test took {time.monotonic() - started:.1f} s"
    )
    assert not refused and not other, "no request failed while Redis came and went"
    assert len(during) >= 300
    assert p99 < 1.0, "requests were not held up by the missing Redis"
    assert all(s.ready_status == 200 for s in run.samples), "readiness never failed over the limits backend"
    for replica in (0, 1):
        seen = [s for s in outage_samples if s.replica == replica]
        assert any(s.state == DEGRADED and s.backend_up == 0 for s in seen), "the outage showed in readyz and metrics"
        assert grown[replica] > 0, "requests were admitted on local counters during the outage"
        assert last[replica].state == "ok" and last[replica].backend_up == 1
    assert not after_other
    assert len(after_ok) == 20 and len(after_refused) == 40, "counting is shared through Redis again"
    assert local_after == local_before, "nothing was admitted locally after recovery"
