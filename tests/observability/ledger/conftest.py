"""Fixtures for the ledger stores: a PostgreSQL table of the test's own, dropped afterwards, and
each store in turn holding the rows a test gives it.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``): skipped
when absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``. Each test's table is named
``bw_ledger_test_<random>`` and dropped (with its indexes and its feedback table) after it, so tests never see each
other's rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.postgres import PostgresLedger
from breakwater.observability.ledger.service import Store
from tests.postgres import DSN, name_of_its_own

#: ``ledger_holding``: ``await ledger_holding(rows, ...)`` opens the store holding them
Holding = Callable[..., Awaitable[Store]]


def table_of_its_own() -> AbstractAsyncContextManager[str]:
    """A fresh table name on the real PostgreSQL (skip or fail if it is absent), dropped on exit
    with the tables made beside it."""
    return name_of_its_own(
        "bw_ledger_test",
        lambda t: f"DROP TABLE IF EXISTS {t}, {t}_feedback, {t}_eval_scores, {t}_hourly, {t}_hourly_from",
    )


@pytest.fixture
async def pg_table() -> AsyncIterator[str]:
    """A fresh table name on the real PostgreSQL; the table is dropped after the test."""
    async with table_of_its_own() as name:
        yield name


@pytest.fixture(params=["sqlite", "postgres"])
async def ledger_holding(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Holding]:
    """Each store in turn (SQLite, then PostgreSQL), opened by the test's own fixture with its rows.

    A test file's ``store`` fixture awaits ``ledger_holding(rows)`` (once a test) and gets the
    store open and holding them: a SQLite file in the test's directory, or a PostgreSQL table of
    its own (``table_of_its_own``: skipped when the server is absent). Each argument is one
    ``write``, in order, so a test can write in batches, or a batch twice. The store is closed,
    and the table dropped, after the test.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def holding(*writes: list[LedgerRow]) -> Store:
            opened: Store
            if request.param == "sqlite":
                opened = SqliteLedger(tmp_path / "ledger.db")
            else:
                table = await stack.enter_async_context(table_of_its_own())
                opened = PostgresLedger(DSN, table=table)
            await opened.open()
            stack.push_async_callback(opened.close)
            for rows in writes:
                await opened.write(rows)
            return opened

        yield holding
