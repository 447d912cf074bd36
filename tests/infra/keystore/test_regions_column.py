"""Keys' and teams' ``regions`` (data residency) in both key stores, and in a store made before them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from breakwater.core.keys import Team, VirtualKey
from breakwater.engine.access.store import AccessStore
from breakwater.infra.keystore import PostgresKeyStore, SqliteKeyStore

from .conftest import DSN, prefix_of_its_own

T = 1_700_000_000.0


async def _sqlite_sql(path: Path, sql: str) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute(sql)


async def _postgres_sql(sql: str) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def made(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Callable[[], AccessStore], Any]]:
    """A way to make the store, and to run SQL on its tables behind its back (``{keys}``, ``{teams}``)."""
    if request.param == "sqlite":
        path = tmp_path / "keys.db"

        async def sql(statement: str) -> None:
            await _sqlite_sql(path, statement.format(keys="breakwater_keys", teams="breakwater_teams"))

        yield (lambda: SqliteKeyStore(path)), sql
        return
    async with prefix_of_its_own() as prefix:
        tables = PostgresKeyStore(DSN, table_prefix=prefix).tables

        async def pg(statement: str) -> None:
            await _postgres_sql(statement.format(keys=tables.keys, teams=tables.teams))

        yield (lambda: PostgresKeyStore(DSN, table_prefix=prefix, command_timeout_s=5.0)), pg


def _key(regions: tuple[str, ...]) -> VirtualKey:
    return VirtualKey(id="key_1", prefix="bw-abc", hash="h1", name="eu", created_at=T, regions=regions)


async def test_regions_are_stored_and_read_back(made: tuple[Callable[[], AccessStore], Any]) -> None:
    make, _ = made
    store = make()
    await store.open()
    try:
        await store.save_key(_key(("eu", "ch")), actor="t", action="key.create", now=T)
        await store.save_team(Team("emea", created_at=T, regions=("eu",)), actor="t", action="team.create", now=T)
        snapshot = await store.snapshot()
        assert snapshot.keys[0].regions == ("eu", "ch") and snapshot.teams[0].regions == ("eu",)
    finally:
        await store.close()


async def test_a_store_made_before_regions_gets_the_column(made: tuple[Callable[[], AccessStore], Any]) -> None:
    """Tables without the column (an older gateway's) get it on open: old keys read as unrestricted."""
    make, sql = made
    store = make()
    await store.open()
    await store.save_key(_key(()), actor="t", action="key.create", now=T)
    await store.close()
    await sql('ALTER TABLE {keys} DROP COLUMN "regions"')
    await sql('ALTER TABLE {teams} DROP COLUMN "regions"')
    store = make()
    await store.open()
    try:
        assert (await store.snapshot()).keys[0].regions == ()
        await store.save_key(_key(("eu",)), actor="t", action="key.update", now=T + 1)
        assert (await store.snapshot()).keys[0].regions == ("eu",)
    finally:
        await store.close()
