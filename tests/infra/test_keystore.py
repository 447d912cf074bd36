"""The SQLite key store: keys round-trip, every change is audited in the same transaction, and
neither the key nor its hash reaches the audit trail."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from breakwater.core.keys import VirtualKey, hash_key, key_prefix, new_key
from breakwater.infra.keystore import SqliteKeyStore

SECRET = b"hash secret"


def _key(key_id: str, secret_key: str) -> VirtualKey:
    return VirtualKey(
        id=key_id,
        prefix=key_prefix(secret_key),
        hash=hash_key(secret_key, SECRET),
        user="alice",
        team="search",
        routes=("fast", "openai/*"),
        tags={"env": "prod"},
        created_at=100.0,
        expires_at=1000.0,
    )


def _files(directory: Path) -> bytes:
    """The database file and its WAL, as bytes."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("keys.db*")))


async def test_keys_round_trip_and_changes_are_audited(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "keys.db")
    await store.open()
    plain = new_key()
    try:
        created = _key("k1", plain)
        assert await store.save(created, actor="admin", action="create", now=100.0) is None
        revoked = dataclasses.replace(created, revoked_at=200.0)
        assert await store.save(revoked, actor="admin", action="revoke", now=200.0) == created
        assert await store.keys() == [revoked]
        revoke, create = await store.audit()
        assert (create.action, create.actor, create.target, create.ts) == ("create", "admin", "k1", 100.0)
        assert create.before is None and create.after is not None and create.after["routes"] == ["fast", "openai/*"]
        assert revoke.before == create.after and revoke.after is not None and revoke.after["revoked_at"] == 200.0
    finally:
        await store.close()
    raw = _files(tmp_path)
    assert plain.encode() not in raw and plain[3:].encode() not in raw  # the key itself is never stored
    with sqlite3.connect(tmp_path / "keys.db") as db:
        trail = " ".join(str(r) for r in db.execute("SELECT before, after FROM breakwater_audit"))
    assert created.hash not in trail  # the audit trail does not even hold the hash


async def test_a_failed_change_leaves_neither_key_nor_audit_row(tmp_path: Path) -> None:
    """Two keys cannot share a hash; the refused insert rolls back its audit row with it."""
    store = SqliteKeyStore(tmp_path / "keys.db")
    await store.open()
    try:
        plain = new_key()
        await store.save(_key("k1", plain), actor="admin", action="create", now=100.0)
        with pytest.raises(sqlite3.IntegrityError):
            await store.save(_key("k2", plain), actor="admin", action="create", now=101.0)
        assert [k.id for k in await store.keys()] == ["k1"]
        assert [e.target for e in await store.audit()] == ["k1"]
    finally:
        await store.close()
