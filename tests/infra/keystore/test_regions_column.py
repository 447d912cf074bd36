"""Keys' and teams' ``regions`` (data residency) in both key stores, and in a store made before them."""

from __future__ import annotations

from breakwater.core.keys import Team, VirtualKey

from .conftest import Behind

T = 1_700_000_000.0


def _key(regions: tuple[str, ...]) -> VirtualKey:
    return VirtualKey(id="key_1", prefix="bw-abc", hash="h1", name="eu", created_at=T, regions=regions)


async def test_regions_are_stored_and_read_back(earlier_store: Behind) -> None:
    make, _ = earlier_store
    store = make()
    await store.open()
    try:
        await store.save_key(_key(("eu", "ch")), actor="t", action="key.create", now=T)
        await store.save_team(Team("emea", created_at=T, regions=("eu",)), actor="t", action="team.create", now=T)
        snapshot = await store.snapshot()
        assert snapshot.keys[0].regions == ("eu", "ch") and snapshot.teams[0].regions == ("eu",)
    finally:
        await store.close()


async def test_a_store_made_before_regions_gets_the_column(earlier_store: Behind) -> None:
    """Tables without the column (an older gateway's) get it on open: old keys read as unrestricted."""
    make, sql = earlier_store
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
