"""Fixtures shared by the command-line tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.conftest import require_service

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of the test's own, dropped afterwards.

    ``store_for`` always uses the default table prefix, so the store URL points at this schema
    instead (``?search_path=``, which asyncpg passes to the server as a setting).
    """
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"bwtest_cli_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        asyncio.run(execute(f"DROP SCHEMA {schema} CASCADE"))
