"""The ``AccessStore`` contract (``engine/access/store.py``) and the ``ConfigVersions`` one
(``core/config/versions.py``), one suite run against both key stores.

SQLite runs everywhere, in a file of the test's own. PostgreSQL needs 127.0.0.1:5432 (trust auth,
user ``postgres``, database ``test``): skipped when absent, a failure under
``BREAKWATER_REQUIRE_SERVICES=1``; each test gets tables of its own (``bwtest_<hex>_*``),
dropped afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from breakwater.core.config.versions import VersionConflict, text_hash
from breakwater.core.keys import SubjectLimits, Team, VirtualKey, hash_key, key_prefix, new_key
from breakwater.core.limits import Budget, Limits
from breakwater.engine.access.store import AccessStore, KeyConflict
from breakwater.infra.keystore import PostgresKeyStore, SqliteKeyStore, store_for
from tests.postgres import DSN

from .conftest import prefix_of_its_own

SECRET = b"hash secret"
T = 1_700_000_000.0
LIMITS = Limits(rpm=60, tpm=100_000, max_concurrent=4, budget=Budget(Decimal("12.345678901"), "week"))


@dataclass
class Backend:
    """A database the stores under test live in, and ways to look at it behind the store's back."""

    make: Callable[[], AccessStore]
    #: every byte (SQLite: the file and its WAL) or every row (PostgreSQL) the database holds
    stored: Callable[[], Awaitable[bytes]]
    #: the audit table's before and after columns, as text
    audit_text: Callable[[], Awaitable[str]]


def _sqlite(path: Path) -> Backend:
    def files() -> bytes:
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(f"{path.name}*")))

    def audit_text() -> str:
        with sqlite3.connect(path) as db:
            return " ".join(str(r) for r in db.execute("SELECT before, after FROM breakwater_audit"))

    async def stored() -> bytes:
        return files()

    async def audit() -> str:
        return audit_text()

    return Backend(lambda: SqliteKeyStore(path), stored, audit)


def _postgres(prefix: str) -> Backend:
    tables = PostgresKeyStore(DSN, table_prefix=prefix).tables

    async def text(sql: str) -> str:
        conn = await asyncpg.connect(DSN)
        try:
            return " ".join(str(v) for r in await conn.fetch(sql) for v in r.values())
        finally:
            await conn.close()

    async def stored() -> bytes:
        every = (tables.keys, tables.teams, tables.limits, tables.audit)
        return (await text(" UNION ALL ".join(f"SELECT t::text FROM {name} t" for name in every))).encode()

    async def audit_text() -> str:
        return await text(f"SELECT before::text, after::text FROM {tables.audit}")

    return Backend(lambda: PostgresKeyStore(DSN, table_prefix=prefix, command_timeout_s=5.0), stored, audit_text)


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each database in turn: a fresh SQLite file, or fresh PostgreSQL tables dropped after the test."""
    if request.param == "sqlite":
        yield _sqlite(tmp_path / "keys.db")
        return
    async with prefix_of_its_own() as prefix:
        yield _postgres(prefix)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AccessStore]:
    """An open store on the backend, closed after the test."""
    opened = backend.make()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def replica(backend: Backend, store: AccessStore) -> AsyncIterator[AccessStore]:
    """A second open store on the same database (another replica), closed after the test."""
    other = backend.make()
    await other.open()
    yield other
    await other.close()


def _key(key_id: str, plain: str | None = None, **changes: object) -> VirtualKey:
    plain = plain or new_key()
    key = VirtualKey(id=key_id, prefix=key_prefix(plain), hash=hash_key(plain, SECRET), created_at=T)
    return dataclasses.replace(key, **changes)  # type: ignore[arg-type]


def _full_key(plain: str, previous: str) -> VirtualKey:
    """A key with every field set to something other than its default."""
    return _key(
        "key_full",
        plain,
        name="search backend",
        user="alice",
        team="search",
        routes=("fast", "openai/*"),
        tags={"env": "prod", "feature": "search"},
        limits=LIMITS,
        expires_at=T + 86_400.5,
        revoked_at=T + 90_000.0,
        disabled=True,
        previous_prefix=key_prefix(previous),
        previous_hash=hash_key(previous, SECRET),
        previous_until=T + 3600.25,
    )


async def test_a_key_round_trips_with_every_field(store: AccessStore) -> None:
    """A key with every field set (exact Decimal budget, tags, routes, rotation fields) reads back equal."""
    key = _full_key(new_key(), new_key())
    assert await store.save_key(key, actor="admin", action="key.create", now=T) is None
    assert (await store.snapshot()).keys == [key]
    assert (await store.snapshot()).keys[0].limits.budget == Budget(Decimal("12.345678901"), "week")


async def test_an_update_returns_the_record_before(store: AccessStore) -> None:
    """Saving a key with a known id replaces it and returns what was stored before."""
    created = _key("k1", user="alice")
    await store.save_key(created, actor="admin", action="key.create", now=T)
    updated = dataclasses.replace(created, name="renamed", routes=("fast",), limits=LIMITS)
    assert await store.save_key(updated, actor="admin", action="key.update", now=T + 1) == created
    assert (await store.snapshot()).keys == [updated]


async def test_the_audit_holds_public_records_and_never_a_key_or_hash(backend: Backend, store: AccessStore) -> None:
    """Create and rotate are audited as ``public()`` before/after; neither key nor hash reaches the audit table."""
    first, second = new_key(), new_key()
    created = _key("k1", first, tags={"env": "prod"}, limits=LIMITS)
    await store.save_key(created, actor="admin", action="key.create", now=T)
    rotated = dataclasses.replace(
        _key("k1", second, tags={"env": "prod"}, limits=LIMITS),
        previous_prefix=created.prefix,
        previous_hash=created.hash,
        previous_until=T + 60.0,
    )
    await store.save_key(rotated, actor="ops", action="key.rotate", now=T + 5)
    rotate, create = await store.audit()
    assert (create.actor, create.action, create.target, create.ts) == ("admin", "key.create", "key:k1", T)
    assert create.before is None and create.after == created.public()
    assert (rotate.actor, rotate.action, rotate.target, rotate.ts) == ("ops", "key.rotate", "key:k1", T + 5)
    assert rotate.before == created.public() and rotate.after == rotated.public()
    assert rotate.seq == create.seq + 1
    trail = await backend.audit_text()
    assert created.prefix in trail  # the trail is there, and names the key by its prefix ...
    for secret in (first, second, first[3:], second[3:], created.hash, rotated.hash):
        assert secret not in trail  # ... but holds neither a key nor a hash
    stored = await backend.stored()
    for plain in (first, second):
        assert plain.encode() not in stored and plain[3:].encode() not in stored  # the key is never stored


@pytest.mark.parametrize(
    ("clash"),
    ["hash = other hash", "hash = other previous", "previous = other hash", "previous = other previous"],
)
async def test_a_hash_clash_writes_neither_key_nor_audit_row(store: AccessStore, clash: str) -> None:
    """A key whose hash or previous hash is another key's hash or previous hash is refused; nothing is written."""
    current, previous = new_key(), new_key()
    other = _key("k1", current, previous_hash=hash_key(previous, SECRET), previous_until=T + 60)
    await store.save_key(other, actor="admin", action="key.create", now=T)
    before = (await store.snapshot(), await store.audit())
    mine, theirs = clash.split(" = ")
    clashing = other.hash if theirs == "other hash" else other.previous_hash
    candidate = _key("k2", **({"hash": clashing} if mine == "hash" else {"previous_hash": clashing}))
    with pytest.raises(KeyConflict):
        await store.save_key(candidate, actor="admin", action="key.create", now=T + 1)
    assert (await store.snapshot(), await store.audit()) == before
    assert await store.save_key(_key("k3"), actor="admin", action="key.create", now=T + 2) is None  # still usable


async def test_teams_are_saved_updated_and_deleted_with_their_audit(store: AccessStore) -> None:
    """A team is created, updated (returning the team before) and deleted (returning it), each audited under ``team:<name>``."""
    team = Team("search", LIMITS, {"cost-center": "42"}, created_at=T)
    assert await store.save_team(team, actor="admin", action="team.create", now=T) is None
    disabled = dataclasses.replace(team, disabled=True, tags={})
    assert await store.save_team(disabled, actor="admin", action="team.disable", now=T + 1) == team
    assert (await store.snapshot()).teams == [disabled]
    assert await store.delete_team("search", actor="ops", now=T + 2) == disabled
    assert (await store.snapshot()).teams == []
    delete, disable, create = await store.audit(target="team:search")
    assert [e.action for e in (create, disable, delete)] == ["team.create", "team.disable", "team.delete"]
    assert (create.before, create.after) == (None, team.public())
    assert (disable.before, disable.after) == (team.public(), disabled.public())
    assert (delete.actor, delete.ts, delete.before, delete.after) == ("ops", T + 2, disabled.public(), None)


async def test_subject_limits_are_saved_and_deleted_per_scope_and_subject(store: AccessStore) -> None:
    """Limits for every user, one user and one tag are separate records, audited under their own targets."""
    every = SubjectLimits("user", "*", Limits(rpm=10), created_at=T)
    alice = SubjectLimits("user", "alice", LIMITS, created_at=T)
    search = SubjectLimits("tag", "feature=search", Limits(budget=Budget(Decimal("0.5"), "day")), created_at=T)
    for entry in (every, alice, search):
        assert await store.save_limits(entry, actor="admin", action="limits.set", now=T) is None
    raised = dataclasses.replace(alice, limits=Limits(rpm=1000))
    assert await store.save_limits(raised, actor="admin", action="limits.set", now=T + 1) == alice
    assert (await store.snapshot()).limits == [search, every, raised]  # by scope, then subject
    assert await store.delete_limits("user", "*", actor="ops", now=T + 2) == every
    assert (await store.snapshot()).limits == [search, raised]
    assert [e.target for e in await store.audit()] == [
        "limits:user:*",
        "limits:user:alice",
        "limits:tag:feature=search",
        "limits:user:alice",
        "limits:user:*",
    ]
    deleted = (await store.audit(limit=1))[0]
    assert (deleted.action, deleted.before, deleted.after) == ("limits.delete", every.public(), None)


async def test_the_version_grows_by_one_per_change_and_not_on_a_no_op_delete(store: AccessStore) -> None:
    """An empty store is at version 0; every change adds one; deleting what does not exist returns None and audits nothing."""
    assert await store.version() == 0
    await store.save_key(_key("k1"), actor="admin", action="key.create", now=T)
    assert await store.version() == 1
    await store.save_team(Team("search"), actor="admin", action="team.create", now=T)
    assert await store.version() == 2
    await store.save_limits(SubjectLimits("tag", "env=prod"), actor="admin", action="limits.set", now=T)
    assert await store.version() == 3
    assert await store.delete_team("nobody", actor="admin", now=T) is None
    assert await store.delete_limits("user", "nobody", actor="admin", now=T) is None
    assert await store.version() == 3 and len(await store.audit()) == 3
    await store.delete_team("search", actor="admin", now=T)
    assert await store.version() == 4 == (await store.audit(limit=1))[0].seq


async def test_a_snapshot_holds_every_record_at_its_version(store: AccessStore) -> None:
    """The snapshot lists keys (oldest first), teams (by name) and limits, with the current version."""
    empty = await store.snapshot()
    assert (empty.keys, empty.teams, empty.limits, empty.version) == ([], [], [], 0)
    late, early = _key("k_late", created_at=T + 10), _key("k_early", created_at=T)
    teams = [Team("b-team", created_at=T), Team("a-team", created_at=T)]
    limits = SubjectLimits("user", "alice", Limits(tpm=5), created_at=T)
    for key in (late, early):
        await store.save_key(key, actor="admin", action="key.create", now=T)
    for team in teams:
        await store.save_team(team, actor="admin", action="team.create", now=T)
    await store.save_limits(limits, actor="admin", action="limits.set", now=T)
    snapshot = await store.snapshot()
    assert snapshot.keys == [early, late] and snapshot.teams == teams[::-1] and snapshot.limits == [limits]
    assert snapshot.version == 5 == await store.version()


async def test_the_audit_is_newest_first_filtered_by_target_and_limited(store: AccessStore) -> None:
    """``audit`` returns the newest entries first, at most ``limit``, only about ``target`` when given."""
    for i in range(4):
        await store.save_key(_key(f"k{i % 2}", name=f"v{i}"), actor="admin", action=f"a{i}", now=T + i)
    assert [e.action for e in await store.audit()] == ["a3", "a2", "a1", "a0"]
    assert [e.action for e in await store.audit(limit=2)] == ["a3", "a2"]
    assert [e.action for e in await store.audit(target="key:k0")] == ["a2", "a0"]
    assert [e.action for e in await store.audit(target="key:k1", limit=1)] == ["a3"]
    assert await store.audit(target="key:none") == []


async def test_a_second_store_on_the_same_database_sees_the_first_ones_changes(
    store: AccessStore, replica: AccessStore
) -> None:
    """Two store objects on one database (two replicas) each see the other's changes and version."""
    key = _key("k1")
    await store.save_key(key, actor="admin", action="key.create", now=T)
    assert await replica.version() == 1 and (await replica.snapshot()).keys == [key]
    team = Team("search", created_at=T)
    await replica.save_team(team, actor="cli", action="team.create", now=T + 1)
    snapshot = await store.snapshot()
    assert (snapshot.keys, snapshot.teams, snapshot.version) == ([key], [team], 2)
    assert [e.actor for e in await store.audit()] == ["cli", "admin"]


async def test_changed_tells_when_another_connection_committed(store: AccessStore, replica: AccessStore) -> None:
    """SQLite's ``changed`` is True at its first call, then only after another connection's commit
    (not after reads or its own writes); PostgreSQL has no such check and always says ``None``."""
    sqlite = isinstance(store, SqliteKeyStore)
    quiet = False if sqlite else None
    assert await store.changed() is (True if sqlite else None)
    await store.snapshot()
    assert await store.changed() is quiet
    await replica.save_key(_key("k1"), actor="cli", action="key.create", now=T)
    assert await store.changed() is (True if sqlite else None)
    assert await store.changed() is quiet
    await store.save_key(_key("k2"), actor="admin", action="key.create", now=T)  # this replica refreshes itself
    assert await store.changed() is quiet


async def test_concurrent_writers_number_their_changes_without_gaps(store: AccessStore, replica: AccessStore) -> None:
    """Changes made at once through two store objects get consecutive audit numbers, and the version counts them all."""
    writes = [
        (store if i % 2 else replica).save_key(_key(f"k{i}"), actor="admin", action="key.create", now=T)
        for i in range(20)
    ]
    await asyncio.gather(*writes)
    assert sorted(e.seq for e in await store.audit()) == list(range(1, 21))
    snapshot = await replica.snapshot()
    assert len(snapshot.keys) == 20 and snapshot.version == 20


async def test_of_two_writers_racing_with_one_hash_exactly_one_wins(store: AccessStore, replica: AccessStore) -> None:
    """Two store objects saving different keys with the same hash at once: one is saved, the other gets KeyConflict."""
    plain = new_key()
    outcomes = await asyncio.gather(
        store.save_key(_key("k1", plain), actor="admin", action="key.create", now=T),
        replica.save_key(_key("k2", plain), actor="admin", action="key.create", now=T),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["KeyConflict", "NoneType"]
    assert len((await store.snapshot()).keys) == 1 and await store.version() == 1


async def test_postgres_store_reconnects_after_losing_its_connection() -> None:
    """A PostgreSQL store whose server session is killed works again by the next call, on a new connection."""
    async with prefix_of_its_own() as prefix:
        store = PostgresKeyStore(DSN, table_prefix=prefix)
        try:
            await store.open()
            await store.save_team(Team("search"), actor="admin", action="team.create", now=T)
            killed = store._conn.get_server_pid()
            admin = await asyncpg.connect(DSN)
            try:
                # with a timeout, pg_terminate_backend waits until the session is gone
                assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", killed)
            finally:
                await admin.close()
            outcomes: list[object] = []
            for _ in range(2):  # the first call may fail on the dead connection, never the second
                try:
                    outcomes.append(await store.version())
                except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError) as exc:
                    outcomes.append(type(exc))
            assert outcomes[-1] == 1 and store._conn.get_server_pid() != killed
        finally:
            await store.close()


def test_store_for_picks_the_store_by_url(tmp_path: Path) -> None:
    """SQLite and PostgreSQL URLs give their stores; anything else, or a bad table prefix, is refused."""
    relative = store_for("sqlite:///keys.db")
    absolute = store_for(f"sqlite:///{tmp_path}/keys.db")
    assert isinstance(relative, SqliteKeyStore) and relative.path == Path("keys.db")
    assert isinstance(absolute, SqliteKeyStore) and absolute.path == tmp_path / "keys.db"
    assert isinstance(store_for("postgresql://u@h/db"), PostgresKeyStore)
    assert isinstance(store_for("postgres://u@h/db"), PostgresKeyStore)
    with pytest.raises(ValueError, match="sqlite:///"):
        store_for("redis://localhost")
    with pytest.raises(ValueError, match="lower-case identifier"):
        PostgresKeyStore(DSN, table_prefix="Bad-Prefix")


# --- configuration versions (core/config/versions.ConfigVersions), kept by the same stores ---

CONFIG_1 = "routes: {}\n# first\n"
CONFIG_2 = "routes: {}\n# second: ünïcode kept\n"


async def test_an_empty_store_has_no_version(store: Any) -> None:
    assert await store.config_newest_number() == 0
    assert await store.config_get() is None
    assert await store.config_get(1) is None
    assert await store.config_history() == []


async def test_versions_are_numbered_in_order_and_kept_whole(store: Any) -> None:
    first = await store.config_append(CONFIG_1, author="cli:ann", action="apply", message="one", now=T)
    second = await store.config_append(CONFIG_2, author="admin", action="rollback", message="two", now=T + 1)
    assert (first.number, second.number) == (1, 2)
    assert second.text == CONFIG_2 and second.hash == text_hash(CONFIG_2) != first.hash
    assert await store.config_newest_number() == 2
    assert await store.config_get() == second
    assert await store.config_get(1) == first
    assert await store.config_get(3) is None
    assert await store.config_history() == [second, first]
    assert await store.config_history(limit=1) == [second]
    assert (second.author, second.action, second.message, second.ts) == ("admin", "rollback", "two", T + 1)


async def test_an_append_based_on_an_old_version_is_refused(store: Any) -> None:
    await store.config_append(CONFIG_1, author="a", action="apply", message="", now=T, expect=0)
    with pytest.raises(VersionConflict):
        await store.config_append(CONFIG_2, author="b", action="apply", message="", now=T, expect=0)
    assert await store.config_newest_number() == 1
    # the store is still usable after the refusal (PostgreSQL keeps its connection)
    third = await store.config_append(CONFIG_2, author="b", action="apply", message="", now=T, expect=1)
    assert third.number == 2


async def test_another_replica_sees_each_version(store: Any, replica: Any) -> None:
    await replica.changed()
    applied = await store.config_append(CONFIG_1, author="a", action="apply", message="m", now=T)
    assert await replica.changed() in (True, None)
    assert await replica.config_get() == applied


async def test_concurrent_appends_get_distinct_numbers(store: Any, replica: Any) -> None:
    made = await asyncio.gather(
        *(
            s.config_append(f"routes: {{}}\n# {i}\n", author="a", action="apply", message=str(i), now=T)
            for i, s in enumerate([store, replica] * 4)
        )
    )
    assert sorted(v.number for v in made) == list(range(1, 9))
    assert [v.number for v in await store.config_history()] == list(range(8, 0, -1))
