"""The open-loop load driver of ``breakwater loadtest`` and its tally.

Open loop: request ``i`` is due at ``start + i / rate`` whether or not earlier ones returned, so a
slow gateway meets the load real clients would put on it (a closed loop, waiting for answers,
would quietly slow down with it and hide the queueing). What is in flight is bounded; a request
due while the bound is reached is not sent and is counted as ``skipped``, so the report says how
much of the target load the client itself could not offer (a request the client's own loop
could not start within a second of its time is skipped too, so the run stays bounded in time). Sending stops at the duration; the
requests still running get ``grace_s`` more, then are cancelled and counted ``unfinished``.

Every scheduled request ends in exactly one of: ``ok`` (2xx, its body read to the end), an error
(by class: ``http 429``, ``http 503``, ``timeout``, ``connection``...), ``unfinished`` or
``skipped``; the report's counts add up to ``scheduled``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send, where, how fast and for how long.

    Args:
        url: the full URL (``http://gateway:8080/v1/chat/completions``).
        body: the JSON body of every request (``stream: true`` for time to first token).
        headers: sent with every request (the key's ``Authorization``).
        rate: requests per second to start.
        duration_s: how long to keep starting requests.
        max_in_flight: at most this many requests running; one more due is skipped and counted.
        timeout_s: a request's whole time limit.
        grace_s: after the duration, how long running requests may still take.
    """

    url: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    rate: float
    duration_s: float
    max_in_flight: int = 256
    timeout_s: float = 60.0
    grace_s: float = 10.0


@dataclass(slots=True)
class Tally:
    """What happened so far; read by the live display while the run goes on."""

    scheduled: int = 0
    sent: int = 0
    ok: int = 0
    skipped: int = 0
    unfinished: int = 0
    in_flight: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def report(self, plan: Plan) -> dict[str, Any]:
        """The final figures, for the table and for ``--json``."""
        elapsed = max(self.ended - self.started, 1e-9)
        finished = self.ok + self.failed
        return {
            "target_rate": plan.rate,
            "duration_s": plan.duration_s,
            "elapsed_s": round(elapsed, 3),
            "scheduled": self.scheduled,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.failed,
            "errors_by_class": dict(sorted(self.errors.items())),
            "rate_limited": self.errors.get("http 429", 0),
            "skipped": self.skipped,
            "unfinished": self.unfinished,
            "sent_per_s": round(self.sent / elapsed, 3),
            "throughput_per_s": round(self.ok / elapsed, 3),
            "finished_per_s": round(finished / elapsed, 3),
            "latency_ms": percentiles(self.latencies_ms),
            "ttft_ms": percentiles(self.ttft_ms) if self.ttft_ms else None,
        }


def percentiles(values: list[float]) -> dict[str, float] | None:
    """Nearest-rank p50, p90, p95, p99 and the maximum; ``None`` without values."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: int) -> float:
        return round(ordered[max(0, -(-p * len(ordered) // 100) - 1)], 2)

    return {"p50": rank(50), "p90": rank(90), "p95": rank(95), "p99": rank(99), "max": round(ordered[-1], 2)}


async def run(plan: Plan, tally: Tally) -> Tally:
    """Drive the gateway by ``plan``, counting into ``tally`` (which the caller may watch)."""
    connector = aiohttp.TCPConnector(limit=plan.max_in_flight, force_close=False)
    timeout = aiohttp.ClientTimeout(total=plan.timeout_s)
    stream = bool(plan.body.get("stream"))
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=dict(plan.headers)) as session:
        tally.started = time.monotonic()
        start = loop.time()
        total = max(1, int(plan.rate * plan.duration_s))
        for i in range(total):
            due = start + i / plan.rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tally.scheduled += 1
            # full, or the client itself fell a second behind schedule: not sent, counted
            if tally.in_flight >= plan.max_in_flight or loop.time() - due > 1.0:
                tally.skipped += 1
                continue
            tally.sent += 1
            tally.in_flight += 1
            task = asyncio.create_task(_one(session, plan, tally, stream))
            running.add(task)
            task.add_done_callback(running.discard)
        end_of_sending = start + plan.duration_s
        if loop.time() < end_of_sending:
            await asyncio.sleep(end_of_sending - loop.time())
        if running:
            _, late = await asyncio.wait(set(running), timeout=plan.grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        tally.ended = time.monotonic()
    return tally


async def _one(session: aiohttp.ClientSession, plan: Plan, tally: Tally, stream: bool) -> None:
    began = time.monotonic()
    try:
        async with session.post(plan.url, json=dict(plan.body)) as response:
            first: float | None = None
            async for _ in response.content.iter_any():
                if first is None:
                    first = time.monotonic()
            if 200 <= response.status < 300:
                tally.ok += 1
                tally.latencies_ms.append((time.monotonic() - began) * 1000)
                if stream and first is not None:
                    tally.ttft_ms.append((first - began) * 1000)
            else:
                tally.errors[f"http {response.status}"] += 1
    except asyncio.CancelledError:
        tally.unfinished += 1
        raise
    except TimeoutError:
        tally.errors["timeout"] += 1
    except aiohttp.ClientConnectionError:
        tally.errors["connection"] += 1
    except aiohttp.ClientError as exc:
        tally.errors[type(exc).__name__] += 1
    finally:
        tally.in_flight -= 1
