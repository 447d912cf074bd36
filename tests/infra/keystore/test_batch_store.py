"""The ``BatchStore`` contract (``engine/batches/store.py``), one suite run against every store: in
memory, and the key stores on SQLite and PostgreSQL.

PostgreSQL needs 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``): skipped when
absent, a failure under ``BREAKWATER_REQUIRE_SERVICES=1``; each test gets tables of its own
(``bwtest_<hex>_*``), dropped afterwards.
"""

from __future__ import annotations

import pytest

from breakwater.engine.batches.store import BatchRecord, BatchStore, FileInfo, LineResult
from breakwater.infra.batch_memory import MemoryBatchStore

from .conftest import Opening

T = 1_700_000_000.0
CONTENT = b'{"custom_id": "a", "body": "\xc3\xbc\x00 binary-safe"}\n'


def _file(file_id: str, owner: str = "key_a", purpose: str = "batch", at: float = T) -> FileInfo:
    return FileInfo(file_id, owner, purpose, f"{file_id}.jsonl", len(CONTENT), at)


def _batch(batch_id: str, owner: str = "key_a", status: str = "validating") -> BatchRecord:
    return BatchRecord(
        batch_id,
        owner,
        "/v1/chat/completions",
        "file-1",
        "24h",
        status,  # type: ignore[arg-type]
        T,
        T + 86_400,
        metadata={"team": "ünïcode"},
        total=3,
    )


def _line(custom_id: str, index: int, ok: bool = True) -> LineResult:
    return LineResult(custom_id, index, ok, {"custom_id": custom_id, "response": {"status_code": 200 if ok else 500}})


@pytest.fixture
async def store(open_store: Opening) -> BatchStore:
    """Each store in turn (in memory, SQLite, PostgreSQL), open on a fresh database; closed (and its
    tables dropped) after the test."""
    return await open_store(MemoryBatchStore)


async def test_a_file_comes_back_with_its_content(store: BatchStore) -> None:
    """A stored file's description and exact bytes come back to its owner."""
    await store.file_put(_file("file-1"), CONTENT)
    assert await store.file_get("file-1", "key_a", T) == _file("file-1")
    assert await store.file_content("file-1", "key_a", T) == CONTENT


async def test_another_owner_sees_no_file(store: BatchStore) -> None:
    """Another key can neither read, list nor delete a file: it is as if it did not exist."""
    await store.file_put(_file("file-1"), CONTENT)
    assert await store.file_get("file-1", "key_b", T) is None
    assert await store.file_content("file-1", "key_b", T) is None
    assert await store.file_list("key_b", None, None, 10, T) == []
    assert await store.file_delete("file-1", "key_b", T) is False
    assert await store.file_get("file-1", "key_a", T) is not None


async def test_files_list_newest_first_by_pages_and_purpose(store: BatchStore) -> None:
    """Listing is newest first, filtered by purpose, and pages after a given id."""
    for i in range(5):
        await store.file_put(_file(f"file-{i}", purpose="batch" if i % 2 == 0 else "batch_output"), CONTENT)
    assert [f.id for f in await store.file_list("key_a", None, None, 3, T)] == ["file-4", "file-3", "file-2"]
    assert [f.id for f in await store.file_list("key_a", None, "file-2", 10, T)] == ["file-1", "file-0"]
    assert [f.id for f in await store.file_list("key_a", "batch", None, 10, T)] == ["file-4", "file-2", "file-0"]
    assert await store.file_list("key_a", None, "file-unknown", 10, T) == []


async def test_a_deleted_file_is_gone(store: BatchStore) -> None:
    """Deleting says whether there was a file, and the file is gone afterwards."""
    await store.file_put(_file("file-1"), CONTENT)
    assert await store.file_delete("file-1", "key_a", T) is True
    assert await store.file_get("file-1", "key_a", T) is None
    assert await store.file_delete("file-1", "key_a", T) is False


async def test_a_batch_comes_back_to_its_owner_only(store: BatchStore) -> None:
    """A saved batch comes back whole to its owner; another key finds nothing."""
    assert await store.batch_save(_batch("batch-1"), None) is True
    assert await store.batch_get("batch-1", "key_a") == _batch("batch-1")
    assert await store.batch_get("batch-1", "key_b") is None
    assert await store.batch_list("key_b", None, 10) == []


async def test_a_status_changes_only_from_the_expected_one(store: BatchStore) -> None:
    """``batch_save`` with ``expect`` is a compare-and-set on the status; inserting twice fails."""
    record = _batch("batch-1")
    await store.batch_save(record, None)
    assert await store.batch_save(record, None) is False
    running = record.moved("in_progress", T + 1)
    assert await store.batch_save(running, "validating") is True
    assert await store.batch_save(running.moved("completed", T + 2), "validating") is False
    got = await store.batch_get("batch-1", "key_a")
    assert got is not None and got.status == "in_progress" and got.times == {"in_progress_at": T + 1}


async def test_batches_list_newest_first_by_pages(store: BatchStore) -> None:
    """Batches list newest first and page after a given id."""
    for i in range(4):
        await store.batch_save(_batch(f"batch-{i}"), None)
    assert [b.id for b in await store.batch_list("key_a", None, 2)] == ["batch-3", "batch-2"]
    assert [b.id for b in await store.batch_list("key_a", "batch-2", 10)] == ["batch-1", "batch-0"]


async def test_a_line_result_is_kept_once_and_counted(store: BatchStore) -> None:
    """The first result of a custom_id stays; results come back in input order and make the counts."""
    await store.batch_save(_batch("batch-1"), None)
    assert await store.line_put("batch-1", _line("c", 2, ok=False)) is True
    assert await store.line_put("batch-1", _line("a", 0)) is True
    assert await store.line_put("batch-1", _line("a", 0, ok=False)) is False
    assert await store.line_ids("batch-1") == {"a", "c"}
    assert await store.lines("batch-1") == [_line("a", 0), _line("c", 2, ok=False)]
    got = await store.batch_get("batch-1", "key_a")
    assert got is not None and (got.total, got.completed, got.failed) == (3, 1, 1)
    assert await store.line_ids("batch-2") == set()


async def test_a_claimed_batch_is_held_until_its_lease_runs_out(store: BatchStore) -> None:
    """A runner's claim holds active batches for the lease; another runner gets them only once it
    has run out, or once the holder lets go; finished batches are never claimed."""
    await store.batch_save(_batch("batch-1"), None)
    await store.batch_save(_batch("batch-2", status="completed"), None)
    assert [b.id for b in await store.batch_claim("r1", T, 60, 10)] == ["batch-1"]
    assert await store.batch_claim("r2", T + 59, 60, 10) == []
    assert [b.id for b in await store.batch_claim("r1", T + 59, 60, 10)] == ["batch-1"]  # renewed to T+119
    assert await store.batch_claim("r2", T + 118, 60, 10) == []
    assert [b.id for b in await store.batch_claim("r2", T + 119, 60, 10)] == ["batch-1"]
    await store.batch_release("batch-1", "r1")  # not r1's any more: nothing changes
    assert await store.batch_claim("r1", T + 120, 60, 10) == []
    await store.batch_release("batch-1", "r2")
    assert [b.id for b in await store.batch_claim("r1", T + 120, 60, 10)] == ["batch-1"]


async def test_a_claim_takes_at_most_limit_batches(store: BatchStore) -> None:
    """``limit`` bounds how many batches one runner takes at once, oldest first."""
    for i in range(3):
        await store.batch_save(_batch(f"batch-{i}"), None)
    assert [b.id for b in await store.batch_claim("r1", T, 60, 2)] == ["batch-0", "batch-1"]
    assert [b.id for b in await store.batch_claim("r2", T, 60, 2)] == ["batch-2"]


async def test_a_claim_renews_the_batches_held_before_taking_others(store: BatchStore) -> None:
    """Batches a runner holds come first in its claim (their leases renewed) even when older
    batches' leases have run out meanwhile."""
    for i in range(3):
        await store.batch_save(_batch(f"batch-{i}"), None)
    assert [b.id for b in await store.batch_claim("r2", T, 60, 1)] == ["batch-0"]
    assert [b.id for b in await store.batch_claim("r1", T, 60, 1)] == ["batch-1"]
    assert [b.id for b in await store.batch_claim("r1", T + 61, 60, 1)] == ["batch-1"]  # batch-0's lease ran out
    assert [b.id for b in await store.batch_claim("r1", T + 62, 60, 2)] == ["batch-0", "batch-1"]


async def test_claimable_says_whether_a_claim_would_take_anything(store: BatchStore) -> None:
    """``batch_claimable`` is true exactly when ``batch_claim`` would claim something: an active
    batch the runner holds (to renew), or one whose lease has run out; never a finished batch."""
    assert await store.batch_claimable("r1", T) is False
    await store.batch_save(_batch("batch-done", status="completed"), None)
    assert await store.batch_claimable("r1", T) is False
    await store.batch_save(_batch("batch-1"), None)
    assert await store.batch_claimable("r1", T) is True
    await store.batch_claim("r1", T, 60, 10)
    assert await store.batch_claimable("r1", T + 1) is True  # held: its lease is to be renewed
    assert await store.batch_claimable("r2", T + 59) is False  # held by another, lease running
    assert await store.batch_claimable("r2", T + 60) is True  # the lease ran out
    record = await store.batch_get("batch-1", "key_a")
    assert record is not None
    await store.batch_save(record.moved("failed", T + 2), "validating")
    assert await store.batch_claimable("r1", T + 3) is False


def _expiring(file_id: str, expires_at: float | None, owner: str = "key_a") -> FileInfo:
    return FileInfo(file_id, owner, "batch", f"{file_id}.jsonl", len(CONTENT), T, expires_at)


async def test_a_file_keeps_its_expiry(store: BatchStore) -> None:
    """A file's ``expires_at`` comes back as stored, and ``None`` (never) stays ``None``."""
    await store.file_put(_expiring("file-1", T + 3600), CONTENT)
    await store.file_put(_expiring("file-2", None), CONTENT)
    assert await store.file_get("file-1", "key_a", T) == _expiring("file-1", T + 3600)
    assert await store.file_get("file-2", "key_a", T + 10**9) == _expiring("file-2", None)


async def test_an_expired_file_is_gone_from_the_moment_it_expires(store: BatchStore) -> None:
    """From ``expires_at`` on, a file is not read, listed nor deleted, as if it did not exist,
    although it is still stored; a second before, it is all there."""
    await store.file_put(_expiring("file-1", T + 3600), CONTENT)
    await store.file_put(_expiring("file-2", None), CONTENT)
    before = T + 3599
    assert await store.file_get("file-1", "key_a", before) is not None
    assert await store.file_content("file-1", "key_a", before) == CONTENT
    assert [f.id for f in await store.file_list("key_a", None, None, 10, before)] == ["file-2", "file-1"]
    at = T + 3600
    assert await store.file_get("file-1", "key_a", at) is None
    assert await store.file_content("file-1", "key_a", at) is None
    assert [f.id for f in await store.file_list("key_a", None, None, 10, at)] == ["file-2"]
    assert [f.id for f in await store.file_list("key_a", "batch", None, 10, at)] == ["file-2"]
    assert await store.file_delete("file-1", "key_a", at) is False
    # the runner's read of an active batch's input ignores expiry; the owner still counts
    assert await store.file_content("file-1", "key_a", None) == CONTENT
    assert await store.file_content("file-1", "key_b", None) is None


async def test_a_page_after_an_expired_file_goes_on_from_it(store: BatchStore) -> None:
    """Paging ``after`` a file that expired meanwhile still goes on from its place in the listing."""
    for i, expires in enumerate([None, T + 3600, None]):
        await store.file_put(_expiring(f"file-{i}", expires), CONTENT)
    assert [f.id for f in await store.file_list("key_a", None, "file-1", 10, T + 3600)] == ["file-0"]


async def test_the_sweep_deletes_expired_files_in_chunks(store: BatchStore) -> None:
    """``file_expired`` finds up to ``limit`` expired files, soonest expired first, and nothing
    else; ``file_sweep`` deletes them, and deleting again (another replica was first) deletes none."""
    await store.file_put(_expiring("file-late", T + 7200), CONTENT)
    await store.file_put(_expiring("file-early", T + 3600), CONTENT)
    await store.file_put(_expiring("file-never", None), CONTENT)
    await store.file_put(_expiring("file-other", T + 5000, owner="key_b"), CONTENT)
    assert await store.file_expired(T + 3599, 10) == []
    now = T + 7200
    assert await store.file_expired(now, 2) == ["file-early", "file-other"]
    assert await store.file_sweep(["file-early", "file-other"], now) == 2
    assert await store.file_sweep(["file-early", "file-other"], now) == 0
    assert await store.file_expired(now, 2) == ["file-late"]
    assert await store.file_sweep(["file-late"], now) == 1
    assert await store.file_expired(now, 10) == []
    assert await store.file_get("file-early", "key_a", None) is None
    assert await store.file_get("file-never", "key_a", now) is not None


async def test_the_sweep_spares_what_has_not_expired(store: BatchStore) -> None:
    """``file_sweep`` checks expiry itself: an id that has not expired at ``now`` (or never
    expires, or does not exist) is left alone."""
    await store.file_put(_expiring("file-1", T + 3600), CONTENT)
    await store.file_put(_expiring("file-2", None), CONTENT)
    assert await store.file_sweep(["file-1", "file-2", "file-none"], T + 3599) == 0
    assert await store.file_get("file-1", "key_a", T) is not None
    assert await store.file_get("file-2", "key_a", T) is not None


async def test_an_active_batchs_input_is_not_swept_until_it_ends(store: BatchStore) -> None:
    """An expired file that an active batch reads is neither found nor deleted by the sweep (it
    is still hidden from its owner); once the batch has ended, it is swept."""
    await store.file_put(_expiring("file-1", T + 3600), CONTENT)  # `_batch`'s input file
    running = _batch("batch-1").moved("in_progress", T)
    await store.batch_save(running, None)
    now = T + 3600
    assert await store.file_get("file-1", "key_a", now) is None
    assert await store.file_expired(now, 10) == []
    assert await store.file_sweep(["file-1"], now) == 0
    assert await store.file_content("file-1", "key_a", None) == CONTENT
    assert await store.batch_save(running.moved("completed", now), "in_progress") is True
    assert await store.file_expired(now, 10) == ["file-1"]
    assert await store.file_sweep(["file-1"], now) == 1
