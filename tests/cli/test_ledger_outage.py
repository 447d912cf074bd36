"""PostgreSQL going away under a running gateway: ``breakwater serve`` writes its ledger through a
loopback TCP proxy to the real server; the proxy is cut mid-load and restored.

Requests must keep succeeding while the database is gone, the spool must grow (read from
``/metrics``), and once the database is back every answered request has exactly one row, with the
content it should have. Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user ``postgres``): the
test creates its own database and drops it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx2 as httpx
import pytest

from tests.cli.test_cli import _free_port, _spawn, _wait_ready
from tests.conftest import require_service
from tests.polling import until
from tests.tcp_proxy import TcpProxy

PG_HOST, PG_PORT = "127.0.0.1", 5432
HI = [{"role": "user", "content": "hi"}]
T = TypeVar("T")


class Loop:
    """An event loop on its own thread, so the proxy keeps forwarding while the test blocks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _rows(database: str) -> list[asyncpg.Record]:
    """Every ledger row, read directly (not through the proxy); empty before the table exists."""
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=database)
    try:
        if await conn.fetchval("SELECT to_regclass('breakwater_ledger')") is None:
            return []
        return await conn.fetch("SELECT * FROM breakwater_ledger ORDER BY seq")
    finally:
        await conn.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


@pytest.fixture
def database(loop: Loop) -> Iterator[str]:
    """A fresh database, dropped afterwards (FORCE: the gateway's pool may still hold a connection)."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"bw_outage_{uuid.uuid4().hex[:12]}"
    loop.run(_admin(f"CREATE DATABASE {name}"))
    yield name
    loop.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _gauge(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    found = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def test_postgres_down_mid_load_loses_nothing(loop: Loop, database: str, tmp_path: Path) -> None:
    proxy = loop.run(TcpProxy.start(PG_HOST, PG_PORT))
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"ledger: {{url: 'postgresql://postgres@127.0.0.1:{proxy.port}/{database}',"
        f" spool_path: '{tmp_path}/ledger.spool', flush_interval_s: 0.05}}\n"
        "access: {enabled: false}\n"
        "providers:\n  m: {type: mock, wire: openai}\n"
        "deployments:\n  d: {provider: m, model: mock-gpt}\n"
        "routes:\n  chat: {deployments: [d], retry: {max_attempts: 1}}\n"
    )
    port = _free_port()
    proc = _spawn("serve", "--config", str(config), "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    answered: list[tuple[str, int, str]] = []  # (request id, status, user)
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not stop.is_set():
                user = f"u{worker}-{i}"
                r = client.post(f"{url}/v1/chat/completions", json={"model": "chat", "messages": HI, "user": user})
                with lock:
                    answered.append((r.headers["x-request-id"], r.status_code, user))
                i += 1

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(4)]
    try:
        _wait_ready(url, proc)
        for t in threads:
            t.start()
        until(lambda: len(loop.run(_rows(database))) >= 100, 30, "100 rows reached PostgreSQL directly")

        loop.run(proxy.cut())
        answered_at_cut = len(answered)
        until(
            lambda: _gauge(url, "breakwater_ledger_spool_rows") >= 300 and len(answered) >= answered_at_cut + 300,
            30,
            "300 more requests were answered and the spool grew past 300 rows",
        )
        rows_during_outage = len(loop.run(_rows(database)))

        loop.run(proxy.restore())
        until(lambda: _gauge(url, "breakwater_ledger_spool_rows") == 0, 60, "the spool replayed")
        stop.set()
        for t in threads:
            t.join(timeout=30)
        until(lambda: len(loop.run(_rows(database))) >= len(answered), 30, "the last rows were written")
        assert _gauge(url, "breakwater_ledger_dropped_rows_total") == 0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        if proc.poll() is None:
            proc.terminate()
        _, err = proc.communicate(timeout=30)
        loop.run(proxy.cut())

    assert proc.returncode == 0, err[-2000:]
    assert all(status == 200 for _, status, _ in answered), "a request failed because of the database"
    rows = loop.run(_rows(database))
    assert rows_during_outage < len(rows)
    assert len(rows) == len(answered), "every request has exactly one row"
    by_id = {r["request_id"]: r for r in rows}
    assert len(by_id) == len(rows), "no row was written twice"
    for request_id, _, user in answered:
        row = by_id[request_id]
        assert (row["status"], row["user"], row["route"], row["deployment"]) == (200, user, "chat", "d")
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["finish_reason"] == "stop"
    assert not (tmp_path / "ledger.spool").exists()
