"""The ``ConfigVersions`` contract (``core/config/versions.py``), run against both key stores."""

from __future__ import annotations

import asyncio

import pytest

from breakwater.core.config.versions import ConfigVersions, VersionConflict, text_hash

from .test_conformance import backend, replica, store  # noqa: F401  (fixtures)

T = 1_700_000_000.0
TEXT_1 = "routes: {}\n# first\n"
TEXT_2 = "routes: {}\n# second: ünïcode kept\n"


async def test_an_empty_store_has_no_version(store: ConfigVersions) -> None:
    assert await store.config_newest_number() == 0
    assert await store.config_get() is None
    assert await store.config_get(1) is None
    assert await store.config_history() == []


async def test_versions_are_numbered_in_order_and_kept_whole(store: ConfigVersions) -> None:
    first = await store.config_append(TEXT_1, author="cli:ann", action="apply", message="one", now=T)
    second = await store.config_append(TEXT_2, author="admin", action="rollback", message="two", now=T + 1)
    assert (first.number, second.number) == (1, 2)
    assert second.text == TEXT_2 and second.hash == text_hash(TEXT_2) != first.hash
    assert await store.config_newest_number() == 2
    assert await store.config_get() == second
    assert await store.config_get(1) == first
    assert await store.config_get(3) is None
    assert await store.config_history() == [second, first]
    assert await store.config_history(limit=1) == [second]
    assert (second.author, second.action, second.message, second.ts) == ("admin", "rollback", "two", T + 1)


async def test_an_append_based_on_an_old_version_is_refused(store: ConfigVersions) -> None:
    await store.config_append(TEXT_1, author="a", action="apply", message="", now=T, expect=0)
    with pytest.raises(VersionConflict):
        await store.config_append(TEXT_2, author="b", action="apply", message="", now=T, expect=0)
    assert await store.config_newest_number() == 1
    # the store is still usable after the refusal (PostgreSQL keeps its connection)
    third = await store.config_append(TEXT_2, author="b", action="apply", message="", now=T, expect=1)
    assert third.number == 2


async def test_another_replica_sees_each_version(store: ConfigVersions, replica: ConfigVersions) -> None:
    await replica.changed()
    applied = await store.config_append(TEXT_1, author="a", action="apply", message="m", now=T)
    assert await replica.changed() in (True, None)
    assert await replica.config_get() == applied


async def test_concurrent_appends_get_distinct_numbers(store: ConfigVersions, replica: ConfigVersions) -> None:
    made = await asyncio.gather(
        *(
            s.config_append(f"routes: {{}}\n# {i}\n", author="a", action="apply", message=str(i), now=T)
            for i, s in enumerate([store, replica] * 4)
        )
    )
    assert sorted(v.number for v in made) == list(range(1, 9))
    assert [v.number for v in await store.config_history()] == list(range(8, 0, -1))
