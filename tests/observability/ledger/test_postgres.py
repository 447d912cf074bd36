"""What only the PostgreSQL ledger store does: reconnecting after the server goes away, and the
writer riding out a database outage.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``): skipped when
absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``. Each test uses its own table and drops it
(``conftest.py``). The behaviour both stores share is in ``test_conformance.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from breakwater.observability.ledger import LedgerRow, LedgerWriter
from breakwater.observability.ledger.postgres import PostgresLedger
from tests.postgres import DSN, HOST, PORT

from ...tcp_proxy import TcpProxy
from .rows import make_row, wait_for


def test_the_table_name_must_be_a_lower_case_identifier() -> None:
    """The table name is spliced into SQL, so anything but a short lower-case identifier is refused."""
    for bad in ("Ledger", "ledger; DROP TABLE x", "1ledger", "a" * 52, ""):
        with pytest.raises(ValueError, match="lower-case identifier"):
            PostgresLedger(DSN, table=bad)
    assert PostgresLedger(DSN, table="a" * 51).table == "a" * 51


async def test_a_dead_server_raises_and_the_store_reconnects(pg_table: str) -> None:
    """A refused connection raises (the writer spools on it); the same store works once the server is reachable."""
    proxy = await TcpProxy.start(HOST, PORT)
    store = PostgresLedger(f"postgresql://postgres@{HOST}:{proxy.port}/test", table=pg_table, command_timeout_s=2)
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


async def test_database_down_mid_load_loses_nothing(pg_table: str, tmp_path: Path) -> None:
    """Cutting the database mid-load: submits keep succeeding, the spool grows; on restore every row lands once, in order."""
    proxy = await TcpProxy.start(HOST, PORT)
    store = PostgresLedger(f"postgresql://postgres@{HOST}:{proxy.port}/test", table=pg_table, command_timeout_s=2)
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
    direct = PostgresLedger(DSN, table=pg_table)
    try:
        assert await direct.count() == len(submitted)
        stored = await direct.fetch(limit=len(submitted) + 1)
    finally:
        await direct.close()
    assert [r.id for r in stored] == [r.id for r in submitted]  # write order (seq) is submit order
    assert stored == submitted  # every field intact
