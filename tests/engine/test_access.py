"""The key directory and the admin operations over a real SQLite key store: changes apply on this
replica at once and on another at its next refresh, a rotation keeps one record, validation
refuses bad input before anything is written, and a hash clash is answered with a new key."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from breakwater.core.errors import AuthenticationFailed, BackendUnavailable, InvalidRequest, NotFound, PermissionDenied
from breakwater.core.keys import AccessSnapshot
from breakwater.engine.access.directory import Directory
from breakwater.engine.access.operations import AccessOperations, KeyPatch, KeySpec, LimitsSpec, TeamSpec, parse
from breakwater.infra.clock import ManualClock
from breakwater.infra.keystore import SqliteKeyStore

SECRET = b"directory-test-secret"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteKeyStore]:
    s = SqliteKeyStore(tmp_path / "keys.db")
    await s.open()
    yield s
    await s.close()


def parts(store: SqliteKeyStore, clock: ManualClock) -> tuple[Directory, AccessOperations]:
    directory = Directory(store, SECRET, clock)
    return directory, AccessOperations(store, SECRET, clock, directory=directory, routes=["fast", "openai/*"])


async def test_a_created_key_authenticates_and_carries_its_owner(store: SqliteKeyStore) -> None:
    """create_key returns the key once; the directory finds it by hash and knows its user and team."""
    clock = ManualClock(wall=1000.0)
    directory, admin = parts(store, clock)
    with pytest.raises(BackendUnavailable):
        directory.authenticate("bw-" + "x" * 43)  # nothing loaded yet: 503, not "invalid key"
    await admin.create_team(TeamSpec(name="search"), actor="t")
    record, plain = await admin.create_key(
        parse(KeySpec, {"user": "alice", "team": "search", "routes": ["openai/*"], "limits": {"rpm": 5}}), actor="t"
    )
    key, team = directory.authenticate(plain)
    assert key.id == record.id and key.user == "alice" and team is not None and team.name == "search"
    directory.check_route(key, "openai/gpt-4o")
    with pytest.raises(PermissionDenied):
        directory.check_route(key, "fast")
    with pytest.raises(AuthenticationFailed) as missing:
        directory.authenticate(None)
    assert missing.value.code == "missing_api_key"


async def test_another_replica_sees_changes_at_its_next_refresh(store: SqliteKeyStore, tmp_path: Path) -> None:
    """A second directory over the same store picks up a revocation when its version check runs."""
    clock = ManualClock(wall=1000.0)
    directory, admin = parts(store, clock)
    _, plain = await admin.create_key(KeySpec(), actor="t")
    other_store = SqliteKeyStore(tmp_path / "keys.db")
    await other_store.open()
    try:
        other = Directory(other_store, SECRET, clock)
        assert await other.refresh()
        other.authenticate(plain)
        assert not await other.refresh()  # nothing changed: one version query, no reload
        [key] = await admin.keys()
        await admin.revoke(key.id, actor="t")
        with pytest.raises(AuthenticationFailed):
            directory.authenticate(plain)  # this replica: at once
        other.authenticate(plain)  # the other: not yet
        assert await other.refresh()
        with pytest.raises(AuthenticationFailed) as revoked:
            other.authenticate(plain)
        assert revoked.value.code == "key_revoked"
    finally:
        await other_store.close()


async def test_rotation_keeps_one_record_and_both_secrets_for_the_overlap(store: SqliteKeyStore) -> None:
    """Rotate: same id and limits, a new secret, the old one accepted until the overlap ends."""
    clock = ManualClock(wall=1000.0)
    directory, admin = parts(store, clock)
    record, old = await admin.create_key(KeySpec(limits=LimitsSpec(rpm=7)), actor="t")
    rotated, new = await admin.rotate(record.id, overlap_s=60, actor="t")
    assert rotated.id == record.id and rotated.limits.rpm == 7 and new != old
    assert rotated.previous_prefix == record.prefix
    assert directory.authenticate(old)[0].id == directory.authenticate(new)[0].id == record.id
    clock.advance(60)
    with pytest.raises(AuthenticationFailed) as rotated_out:
        directory.authenticate(old)
    assert rotated_out.value.code == "key_rotated"
    directory.authenticate(new)


async def test_bad_input_writes_nothing(store: SqliteKeyStore) -> None:
    """Unknown teams and routes, bad tags and limits are refused before the store is touched."""
    _, admin = parts(store, ManualClock())
    for data, param in [
        ({"team": "nope"}, "team"),
        ({"routes": ["slow"]}, "routes"),
        ({"tags": {"a,b": "c"}}, "tags"),
        ({"limits": {"tpm": -1}}, "limits.tpm"),
        ({"expires_at": 1, "expires_in_s": 5}, "expires_at"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            await admin.create_key(parse(KeySpec, data), actor="t")
        assert caught.value.param == param
    assert await admin.keys() == [] and await admin.audit() == []
    with pytest.raises(NotFound):
        await admin.update_key("key_missing", KeyPatch(name="x"), actor="t")


async def test_a_team_with_keys_cannot_be_deleted(store: SqliteKeyStore) -> None:
    """Deleting a team that still has live keys is refused; after they are revoked it succeeds."""
    _, admin = parts(store, ManualClock(wall=1000.0))
    await admin.create_team(TeamSpec(name="ops"), actor="t")
    record, _ = await admin.create_key(KeySpec(team="ops"), actor="t")
    with pytest.raises(InvalidRequest, match="still has keys"):
        await admin.delete_team("ops", actor="t")
    await admin.revoke(record.id, actor="t")
    assert (await admin.delete_team("ops", actor="t")).name == "ops"


async def test_a_hash_clash_is_answered_with_another_key(store: SqliteKeyStore) -> None:
    """The store refuses a key whose hash another key has; create_key then draws a new secret."""
    counter = itertools.count()

    def repeating(n: int) -> bytes:
        # ids differ; the first two secrets are equal, the third differs
        draw = next(counter)
        if n == 32:
            return bytes([0 if draw < 4 else 1]) * n
        return draw.to_bytes(n, "big")

    clock = ManualClock(wall=1000.0)
    directory = Directory(store, SECRET, clock)
    admin = AccessOperations(store, SECRET, clock, directory=directory, random_bytes=repeating)
    _, first = await admin.create_key(KeySpec(), actor="t")
    _, second = await admin.create_key(KeySpec(), actor="t")
    assert first != second
    assert len(await admin.keys()) == 2


# --- the background loop's ticks (``Directory.check``) ----------------------------------------


class Watched:
    """A key store that counts the reads a directory makes of it, and can hide its change signal
    (as PostgreSQL has none)."""

    def __init__(self, store: SqliteKeyStore, *, signal: bool = True) -> None:
        self.store = store
        self.signal = signal
        self.reads: Counter[str] = Counter()

    async def changed(self) -> bool | None:
        self.reads["changed"] += 1
        return await self.store.changed() if self.signal else None

    async def version(self) -> int:
        self.reads["version"] += 1
        return await self.store.version()

    async def snapshot(self) -> AccessSnapshot:
        self.reads["snapshot"] += 1
        return await self.store.snapshot()


def _watching(watched: Watched, reload_s: float) -> Directory:
    """A directory over ``watched`` whose loop would tick every 0.25 s (ticks here are called by hand)."""
    return Directory(watched, SECRET, ManualClock(wall=1000.0), reload_s=reload_s, watch_s=0.25)  # type: ignore[arg-type]


async def _started(directory: Directory) -> Directory:
    """The directory after its first two ticks: the keys loaded, and the change signal's first
    reading taken (a first reading has nothing to compare with, so it counts as a change)."""
    assert await directory.check()
    assert not await directory.check()
    return directory


@pytest.fixture
async def cli_admin(tmp_path: Path) -> AsyncIterator[AccessOperations]:
    """Admin operations on the test's key store over a connection of their own: another process, like the CLI."""
    other = SqliteKeyStore(tmp_path / "keys.db")
    await other.open()
    yield AccessOperations(other, SECRET, ManualClock(wall=1000.0), routes=["fast"])
    await other.close()


async def test_a_key_made_by_another_process_is_live_at_the_next_tick(
    store: SqliteKeyStore, cli_admin: AccessOperations
) -> None:
    """With a change signal, the tick after another connection's commit reloads the keys, long before reload_s."""
    watched = Watched(store)
    directory = await _started(_watching(watched, reload_s=60))
    assert not await directory.check()
    record, plain = await cli_admin.create_key(KeySpec(), actor="cli:test")
    with pytest.raises(AuthenticationFailed):
        directory.authenticate(plain)
    watched.reads.clear()
    assert await directory.check()
    assert directory.authenticate(plain)[0].id == record.id
    assert watched.reads == {"changed": 1, "version": 1, "snapshot": 1}


async def test_without_a_change_a_tick_reads_only_the_signal_until_reload_s(
    store: SqliteKeyStore, cli_admin: AccessOperations
) -> None:
    """Quiet ticks read only the change signal; every reload_s worth of ticks (1 s / 0.25 s = 4) the version is read too."""
    watched = Watched(store)
    directory = await _started(_watching(watched, reload_s=1.0))
    watched.reads.clear()
    assert [await directory.check() for _ in range(8)] == [False] * 8
    assert watched.reads == {"changed": 6, "version": 2}  # ticks 4 and 8 check the version instead


async def test_a_store_without_a_signal_is_polled_every_reload_s(
    store: SqliteKeyStore, cli_admin: AccessOperations
) -> None:
    """A store with no change signal (PostgreSQL) has its version read at every tick, each reload_s apart."""
    watched = Watched(store, signal=False)
    directory = _watching(watched, reload_s=1.0)
    await directory.check()
    assert directory._tick_s() == 0.25
    await directory.check()  # learns there is no signal
    assert directory._tick_s() == 1.0
    watched.reads.clear()
    await cli_admin.create_key(KeySpec(), actor="cli:test")
    assert await directory.check()
    assert watched.reads == {"version": 1, "snapshot": 1}


async def test_a_wake_checks_the_version_at_once(store: SqliteKeyStore) -> None:
    """A tick woken by pub/sub reads the version without asking the change signal first."""
    watched = Watched(store)
    directory = await _started(_watching(watched, reload_s=60))
    watched.reads.clear()
    assert not await directory.check(woken=True)
    assert watched.reads == {"version": 1}
