"""The Python side of the load: readiness probes, time-to-first-token, the smoke run and the soak.

wrk drives the throughput points (it is far cheaper per request than any Python client); this
module covers what wrk cannot measure (the first SSE frame's arrival) and what must run without
it (the CI smoke mode, the fixed-rate soak).
"""

from __future__ import annotations

import asyncio
import http.client
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

#: the API key a system under test gets when it checks none (the upstream mock, the bare proxy)
ANY_TOKEN = "sk-bench"


def headers(token: str) -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {token}"}


def _conn(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30), parts.path


def post_ok(url: str, payload: str, token: str = ANY_TOKEN) -> bool:
    """One request; True if it answered 200 (connection refused while starting is False)."""
    conn, path = _conn(url)
    try:
        conn.request("POST", path, payload, headers(token))
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except OSError:
        return False
    finally:
        conn.close()


def ttft(url: str, payload: str, samples: int, token: str = ANY_TOKEN) -> list[float]:
    """Seconds from sending a streamed request to the first SSE frame carrying content, sequentially."""
    conn, path = _conn(url)
    sent = headers(token)
    times: list[float] = []
    try:
        for _ in range(samples):
            t0 = time.perf_counter()
            conn.request("POST", path, payload, sent)
            resp = conn.getresponse()
            while True:
                line = resp.readline()
                if not line or (line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line):
                    break
            times.append(time.perf_counter() - t0)
            resp.read()
    finally:
        conn.close()
    return times


async def _worker(
    session: aiohttp.ClientSession, url: str, payload: str, until: float, stats: dict[str, Any], token: str
) -> None:
    sent = headers(token)
    while time.monotonic() < until:
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=payload, headers=sent) as resp:
                await resp.read()
                ok = resp.status == 200
        except aiohttp.ClientError:
            ok = False
        stats["latencies"].append(time.perf_counter() - t0)
        stats["ok" if ok else "failed"] += 1


async def _smoke(url: str, plain: str, stream: str, seconds: float, concurrency: int, token: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        for mode, payload in (("plain", plain), ("stream", stream)):
            stats: dict[str, Any] = {"ok": 0, "failed": 0, "latencies": []}
            until = time.monotonic() + seconds / 2
            await asyncio.gather(*(_worker(session, url, payload, until, stats, token) for _ in range(concurrency)))
            lat = sorted(stats.pop("latencies"))
            stats["rps"] = (stats["ok"] + stats["failed"]) / (seconds / 2)
            stats["p50_ms"] = lat[len(lat) // 2] * 1000 if lat else None
            out[mode] = stats
    return out


def smoke(
    url: str, plain: str, stream: str, seconds: float = 3.0, concurrency: int = 10, token: str = ANY_TOKEN
) -> dict[str, Any]:
    """A few seconds of plain then streamed load; counts successes and failures."""
    return asyncio.run(_smoke(url, plain, stream, seconds, concurrency, token))


async def _soak(
    url: str, payload: str, seconds: float, rate: float, rss: Callable[[int], int], pid: int, token: str
) -> dict[str, Any]:
    stats = {"ok": 0, "failed": 0}
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession) -> None:
        try:
            async with session.post(url, data=payload, headers=headers(token)) as resp:
                await resp.read()
                stats["ok" if resp.status == 200 else "failed"] += 1
        except aiohttp.ClientError:
            stats["failed"] += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        sent = 0
        next_sample = started
        while (now := time.monotonic()) - started < seconds:
            due = int((now - started) * rate)
            while sent < due:  # open loop: the schedule does not wait for answers
                task = asyncio.create_task(one(session))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            if now >= next_sample:
                samples.append({"t_s": round(now - started, 1), "rss_mb": rss(pid) / 2**20})
                next_sample += 10.0
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
    samples.append({"t_s": round(time.monotonic() - started, 1), "rss_mb": rss(pid) / 2**20})
    warm = [s["rss_mb"] for s in samples if s["t_s"] >= min(60.0, seconds / 5)]
    drift = (max(warm) - min(warm)) / min(warm) if warm else 0.0
    return {"seconds": seconds, "rate": rate, **stats, "rss": samples, "drift_after_warmup": drift}


def soak(
    url: str, payload: str, seconds: float, rate: float, rss: Callable[[int], int], pid: int, token: str = ANY_TOKEN
) -> dict[str, Any]:
    """Fixed-rate load for ``seconds``, sampling the gateway's RSS every 10 s."""
    return asyncio.run(_soak(url, payload, seconds, rate, rss, pid, token))
