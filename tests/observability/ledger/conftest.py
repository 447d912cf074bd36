"""Fixtures for the ledger stores: a PostgreSQL table of the test's own, dropped afterwards.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``): skipped
when absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``. Each test's table is named
``bw_ledger_test_<random>`` and dropped (with its indexes and its feedback table) after it, so tests never see each
other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import pytest

from ...conftest import require_service

HOST, PORT = "127.0.0.1", 5432
DSN = f"postgresql://postgres@{HOST}:{PORT}/test"


async def pg_execute(sql: str, *args: object) -> str:
    """Run one statement on a connection of its own, behind any store's back."""
    conn = await asyncpg.connect(DSN)
    try:
        status: str = await conn.execute(sql, *args)
        return status
    finally:
        await conn.close()


@asynccontextmanager
async def table_of_its_own() -> AsyncIterator[str]:
    """A fresh table name on the real PostgreSQL (skip or fail if it is absent), dropped on exit."""
    require_service("PostgreSQL", HOST, PORT)
    name = f"bw_ledger_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        await pg_execute(
            f"DROP TABLE IF EXISTS {name}, {name}_feedback, {name}_eval_scores, {name}_hourly, {name}_hourly_from"
        )


@pytest.fixture
async def pg_table() -> AsyncIterator[str]:
    """A fresh table name on the real PostgreSQL; the table is dropped after the test."""
    async with table_of_its_own() as name:
        yield name
