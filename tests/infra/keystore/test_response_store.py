"""The ``ResponseStore`` contract (``engine/responses/store.py``), one suite run against every store:
in memory, and the key stores on SQLite and PostgreSQL.

PostgreSQL needs 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``): skipped when
absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``; each test gets tables of its own
(``bwtest_<hex>_*``), dropped afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from breakwater.engine.responses.store import ResponseStore, StoredResponse
from breakwater.infra.response_memory import MemoryResponseStore

from .conftest import Opening

T = 1_700_000_000.0
TTL = 3600.0

ITEMS: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": "Hello, ünïcode ✓"},
    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a": [1, 2.5, null]}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
]


def _record(response_id: str, owner: str = "key_a", at: float = T, ttl: float = TTL) -> StoredResponse:
    response = {"id": response_id, "object": "response", "output": [], "usage": {"total_tokens": 3}}
    return StoredResponse(response_id, owner, at, at + ttl, ITEMS, response)


@pytest.fixture
async def store(open_store: Opening) -> ResponseStore:
    """Each store in turn (in memory, SQLite, PostgreSQL), open on a fresh database; closed (and its
    tables dropped) after the test."""
    return await open_store(MemoryResponseStore)


async def test_put_then_get_returns_the_record(store: ResponseStore) -> None:
    """A stored record comes back whole: its items and Response object as JSON, its times and owner."""
    record = _record("resp_1")
    await store.response_put(record, T)
    assert await store.response_get("resp_1", "key_a", T + 1) == record


async def test_unknown_id_is_none(store: ResponseStore) -> None:
    """An id never stored is not found."""
    assert await store.response_get("resp_nope", "key_a", T) is None


async def test_another_owner_finds_nothing(store: ResponseStore) -> None:
    """A record is found only by the key that made it: another key gets nothing, and cannot delete it."""
    await store.response_put(_record("resp_1", owner="key_a"), T)
    assert await store.response_get("resp_1", "key_b", T) is None
    assert await store.response_get("resp_1", "", T) is None
    assert await store.response_delete("resp_1", "key_b") is False
    assert await store.response_get("resp_1", "key_a", T) is not None


async def test_expired_record_is_not_returned(store: ResponseStore) -> None:
    """A record is readable until its expiry and not at or after it."""
    await store.response_put(_record("resp_1"), T)
    assert await store.response_get("resp_1", "key_a", T + TTL - 1) is not None
    assert await store.response_get("resp_1", "key_a", T + TTL) is None


async def test_a_write_removes_expired_records(store: ResponseStore) -> None:
    """Records expired when another is written are gone, even read with an earlier clock."""
    await store.response_put(_record("resp_old", at=T), T)
    await store.response_put(_record("resp_new", at=T + TTL), T + TTL)
    assert await store.response_get("resp_old", "key_a", T) is None
    assert await store.response_get("resp_new", "key_a", T + TTL) is not None


async def test_delete_removes_once(store: ResponseStore) -> None:
    """Deleting a record says it existed; it is gone after, and a second delete finds nothing."""
    await store.response_put(_record("resp_1"), T)
    assert await store.response_delete("resp_1", "key_a") is True
    assert await store.response_get("resp_1", "key_a", T) is None
    assert await store.response_delete("resp_1", "key_a") is False


async def test_put_replaces_a_record_with_the_same_id(store: ResponseStore) -> None:
    """Storing an id twice keeps the second record."""
    await store.response_put(_record("resp_1", owner="key_a"), T)
    await store.response_put(_record("resp_1", owner="key_b"), T)
    assert await store.response_get("resp_1", "key_a", T) is None
    found = await store.response_get("resp_1", "key_b", T)
    assert found is not None and found.owner == "key_b"


async def test_memory_store_drops_the_oldest_past_its_bound() -> None:
    """The memory store keeps at most ``max_records``: the oldest go first."""
    store = MemoryResponseStore(max_records=2)
    for n in range(3):
        await store.response_put(_record(f"resp_{n}"), T)
    assert await store.response_get("resp_0", "key_a", T) is None
    assert await store.response_get("resp_1", "key_a", T) is not None
    assert await store.response_get("resp_2", "key_a", T) is not None
