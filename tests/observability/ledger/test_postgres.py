"""The PostgreSQL ledger store against a real server, and the writer riding out a database outage.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``): skipped when
absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``. Each test uses its own table and drops it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from breakwater.observability.ledger import LedgerRow, LedgerWriter
from breakwater.observability.ledger.postgres import PostgresLedger
from breakwater.observability.ledger.row import ADDED_COLUMNS

from ...conftest import require_service
from ...tcp_proxy import TcpProxy
from .rows import T0, make_row, wait_for

HOST, PORT = "127.0.0.1", 5432
DSN = f"postgresql://postgres@{HOST}:{PORT}/test"


@pytest.fixture
async def table() -> AsyncIterator[str]:
    """A fresh table name, dropped after the test."""
    require_service("PostgreSQL", HOST, PORT)
    name = f"bw_ledger_test_{uuid.uuid4().hex[:12]}"
    yield name
    store = PostgresLedger(DSN, table=name)
    await store._call("execute", f"DROP TABLE IF EXISTS {name}")
    await store.close()


async def test_round_trip_and_idempotent_writes(table: str) -> None:
    """Rows come back equal (Decimal cost, JSONB tags, booleans), and a replayed batch is skipped."""
    store = PostgresLedger(DSN, table=table)
    await store.open()
    try:
        rows = [make_row(i) for i in range(30)]
        await store.write(rows[:20])
        await store.write(rows[10:])  # overlaps: rows 10..19 twice
        assert await store.count() == 30
        assert await store.fetch() == rows
        indexes = await store._call("fetch", "SELECT indexname FROM pg_indexes WHERE tablename = $1", table)
        assert {f"{table}_ts", f"{table}_ts_user", f"{table}_ts_route"} <= {r["indexname"] for r in indexes}
    finally:
        await store.close()


async def test_a_table_from_before_the_added_columns_gains_them(table: str) -> None:
    """A table made by an earlier version gets the new columns on connect; its rows stay."""
    store = PostgresLedger(DSN, table=table)
    await store.open()
    await store.write([make_row(0)])
    for name in ADDED_COLUMNS:  # back to the first schema
        await store._call("execute", f"ALTER TABLE {table} DROP COLUMN {name}")
    await store.close()
    store = PostgresLedger(DSN, table=table)
    try:
        await store.write([make_row(2)])
        old, new = await store.fetch()
    finally:
        await store.close()
    assert old.id == make_row(0).id and old.upstream_ms is None
    assert new == make_row(2) and new.upstream_ms is not None


async def test_delete_before_in_chunks(table: str) -> None:
    """Retention deletes exactly the rows older than the cut-off, across several chunks."""
    store = PostgresLedger(DSN, table=table, delete_chunk=4)
    await store.open()
    try:
        await store.write([make_row(i) for i in range(20)])
        assert await store.delete_before(T0 + 13 * 0.001 - 1e-9) == 13
        assert [r.id for r in await store.fetch()] == [make_row(i).id for i in range(13, 20)]
    finally:
        await store.close()


async def test_a_dead_server_raises_and_the_store_reconnects(table: str) -> None:
    """A refused connection raises (the writer spools on it); the same store works once the server is reachable."""
    proxy = await TcpProxy.start(HOST, PORT)
    store = PostgresLedger(f"postgresql://postgres@{HOST}:{proxy.port}/test", table=table, command_timeout_s=2)
    try:
        await store.write([make_row(0)])
        await proxy.cut()
        with pytest.raises(Exception):  # noqa: B017 - refused, reset or closed: whichever the cut hits first
            await store.write([make_row(1)])
        await proxy.restore()
        await store.write([make_row(1)])
        assert await store.count() == 2
    finally:
        await store.close()
        await proxy.cut()


async def test_database_down_mid_load_loses_nothing(table: str, tmp_path: Path) -> None:
    """Cutting the database mid-load: submits keep succeeding, the spool grows; on restore every row lands once, in order."""
    proxy = await TcpProxy.start(HOST, PORT)
    store = PostgresLedger(f"postgresql://postgres@{HOST}:{proxy.port}/test", table=table, command_timeout_s=2)
    spool = tmp_path / "ledger.jsonl"
    writer = LedgerWriter(store, spool, batch_size=200, flush_interval_s=0.005, retry_initial_s=0.01, retry_max_s=0.05)
    submitted: list[LedgerRow] = []
    producing = True

    async def produce() -> None:
        i = 0
        while producing:
            for _ in range(10):  # bursts of 10 rows, then let the writer run
                row = make_row(i, prefix="load")
                writer.submit(row)  # must never raise nor block, whatever the database does
                submitted.append(row)
                i += 1
            # Pacing the load (not synchronisation): at most 5000 rows/s, below what the store
            # takes through the proxy, or no replay could ever catch up.
            await asyncio.sleep(0.002)

    writer.start()
    producer = asyncio.create_task(produce())
    try:
        await wait_for(lambda: writer.written >= 500, "500 rows written directly")
        await proxy.cut()
        cut_at = len(submitted)
        await wait_for(lambda: writer.spooling, "the writer noticed the outage")
        written_at_cut = writer.written
        await wait_for(
            lambda: writer.spooled_rows >= 1000 and len(submitted) >= cut_at + 1000,
            "1000 more submits (none raised) and the spool past 1000 rows",
        )
        assert spool.exists() and writer.written == written_at_cut  # nothing reached the database meanwhile

        await proxy.restore()
        await wait_for(lambda: not writer.spooling, "the spool replayed", timeout_s=30)
        producing = False
        await producer
        await writer.stop()
    finally:
        producing = False
        await producer
        await writer.stop()
        await proxy.cut()

    assert not spool.exists()
    assert writer.dropped == 0 and writer.pending == 0 and writer.spooled_rows == 0
    await store.close()
    direct = PostgresLedger(DSN, table=table)
    try:
        assert await direct.count() == len(submitted)
        stored = await direct.fetch(limit=len(submitted) + 1)
    finally:
        await direct.close()
    assert [r.id for r in stored] == [r.id for r in submitted]  # write order (seq) is submit order
    assert stored == submitted  # every field intact
