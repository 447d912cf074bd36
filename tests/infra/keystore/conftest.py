"""Fixtures for the key stores' suites: PostgreSQL tables of the test's own, and each store of a
contract in turn (in memory, and the key stores on SQLite and PostgreSQL).

PostgreSQL needs 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``): skipped when
absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``. Each test gets tables of its own
(``bwtest_<hex>_*``), every one of them dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, astuple
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from breakwater.infra.keystore import PostgresKeyStore, SqliteKeyStore
from breakwater.infra.keystore.schema import Tables
from tests.postgres import DSN, name_of_its_own, pg_execute


class Openable(Protocol):
    """A store the suites open before a test and close after it."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=Openable)


class Opening(Protocol):
    """``open_store``: ``await open_store(MemoryBatchStore)`` is the store of this run, open."""

    async def __call__(self, memory: Callable[[], S]) -> S | SqliteKeyStore | PostgresKeyStore: ...


async def drop_tables(prefix: str) -> None:
    """Drop every table a PostgreSQL key store makes under ``prefix`` (the batches' too)."""
    await pg_execute(_drop(prefix))


def _drop(prefix: str) -> str:
    return f"DROP TABLE IF EXISTS {', '.join(astuple(Tables.named(prefix)))}"


def prefix_of_its_own() -> AbstractAsyncContextManager[str]:
    """A fresh table prefix on the real PostgreSQL (skip or fail if it is absent), its tables dropped on exit."""
    return name_of_its_own("bwtest", _drop)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opening]:
    """Each store in turn (in memory, SQLite, PostgreSQL), opened by the test file's own fixture.

    A contract's suite (``ResponseStore``, ``BatchStore``) awaits ``open_store(memory)`` once a
    test, with its in-memory store's class, and gets that store, or a key store on a fresh SQLite
    file or fresh PostgreSQL tables (``prefix_of_its_own``), open. The store is closed, and its
    tables dropped, after the test.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def opening(memory: Callable[[], S]) -> S | SqliteKeyStore | PostgresKeyStore:
            opened: S | SqliteKeyStore | PostgresKeyStore
            if request.param == "memory":
                opened = memory()
            elif request.param == "sqlite":
                opened = SqliteKeyStore(tmp_path / "keys.db")
            else:
                prefix = await stack.enter_async_context(prefix_of_its_own())
                opened = PostgresKeyStore(DSN, table_prefix=prefix)
            await opened.open()
            stack.push_async_callback(opened.close)
            return opened

        yield opening


KeyStore = SqliteKeyStore | PostgresKeyStore
Behind = tuple[Callable[[], KeyStore], Callable[[str], Awaitable[None]]]
"""``earlier_store``: a way to make the store, and to run SQL on its tables behind its back."""


@pytest.fixture(params=["sqlite", "postgres"])
async def earlier_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Behind]:
    """Each key store in turn (a fresh SQLite file, fresh PostgreSQL tables), and a way to run
    SQL on its tables (``{keys}``, ``{files}``: every ``Tables`` field names its table) behind its
    back, as a migration test turns the tables back into an earlier version's."""
    if request.param == "sqlite":
        path = tmp_path / "keys.db"
        names = asdict(Tables.named("breakwater"))

        async def lite(statement: str) -> None:
            with contextlib.closing(sqlite3.connect(path)) as db, db:
                db.execute(statement.format(**names))

        yield (lambda: SqliteKeyStore(path)), lite
        return
    async with prefix_of_its_own() as prefix:
        tables = asdict(Tables.named(prefix))

        async def pg(statement: str) -> None:
            await pg_execute(statement.format(**tables))

        yield (lambda: PostgresKeyStore(DSN, table_prefix=prefix, command_timeout_s=5.0)), pg
