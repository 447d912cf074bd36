"""Batch files' ``expires_at`` in a key store made before it: both stores add the column (and its
index) on open, and the files kept by the earlier version never expire."""

from __future__ import annotations

from breakwater.engine.batches.store import FileInfo

from .conftest import Behind

T = 1_700_000_000.0


async def test_a_store_made_before_expiry_gets_the_column(earlier_store: Behind) -> None:
    """A files table without ``expires_at`` (an older gateway's) gets it on open: its files read
    with no expiry and are never swept, and new files keep theirs."""
    make, sql = earlier_store
    store = make()
    await store.open()
    await store.file_put(FileInfo("file-old", "key_a", "batch", "old.jsonl", 3, T), b"old")
    await store.close()
    await sql("DROP INDEX {files}_expires")
    await sql('ALTER TABLE {files} DROP COLUMN "expires_at"')
    store = make()
    await store.open()
    try:
        later = T + 10**9
        assert await store.file_get("file-old", "key_a", later) == FileInfo(
            "file-old", "key_a", "batch", "old.jsonl", 3, T, None
        )
        assert await store.file_expired(later, 10) == []
        await store.file_put(FileInfo("file-new", "key_a", "batch", "new.jsonl", 3, T, T + 3600), b"new")
        assert await store.file_expired(T + 3600, 10) == ["file-new"]
        assert [f.id for f in await store.file_list("key_a", None, None, 10, T + 3600)] == ["file-old"]
    finally:
        await store.close()
