"""The real PostgreSQL the suites use (127.0.0.1:5432, trust auth, user ``postgres``, database
``test``): a statement run behind a store's back, and names of a test's own, dropped after it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]

from tests.conftest import require_service

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
async def name_of_its_own(stem: str, drop: Callable[[str], str]) -> AsyncIterator[str]:
    """``<stem>_<random>``, a name no other test uses, on the real PostgreSQL (skipped, or failed
    under ``BREAKWATER_REQUIRE_SERVICES=1``, when it is absent); ``drop(name)``, the statement
    dropping what the test made under it, runs on exit."""
    require_service("PostgreSQL", HOST, PORT)
    name = f"{stem}_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        await pg_execute(drop(name))
