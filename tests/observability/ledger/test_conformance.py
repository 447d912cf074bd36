"""The ledger store contract, one suite run against both stores (``SqliteLedger``, ``PostgresLedger``).

What every store must do: create its table and ``ts`` indexes on ``open`` and add the columns a
table from an earlier version lacks; insert each batch in one transaction, skipping rows whose
``id`` it already holds (the writer's replays rely on it); read rows back equal, in write order;
delete old rows for retention, in chunks; keep feedback and drift eval scores on requests and find a request's row by
its id and key; and answer the usage aggregate (``breakwater usage``,
``/admin/usage``, budget seeding) with the same figures, to the same exact decimal text.

SQLite runs everywhere, in a file of the test's own. PostgreSQL needs 127.0.0.1:5432 (trust auth,
user ``postgres``, database ``test``): skipped when absent, a failure under
``BREAKWATER_REQUIRE_SERVICES=1``; each test gets a table of its own, dropped afterwards
(``conftest.py``). What only one store does lives in ``test_sqlite.py`` and ``test_postgres.py``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from breakwater.engine.drift.stage import Score
from breakwater.observability.ledger import LedgerWriter, Retention, SqliteLedger
from breakwater.observability.ledger.aggregate import BY, aggregate
from breakwater.observability.ledger.feedback import Feedback
from breakwater.observability.ledger.postgres import PostgresLedger
from breakwater.observability.ledger.row import ADDED_COLUMNS
from tests.postgres import DSN, pg_execute

from .conftest import table_of_its_own
from .rows import DAY, START, T0, USAGE_ROWS, make_row, wait_for

Store = SqliteLedger | PostgresLedger


@dataclass
class Backend:
    """A database the stores under test live in, and ways to look at it behind the store's back."""

    #: a store on this database; keyword arguments (``delete_chunk``) go to its constructor
    make: Callable[..., Store]
    #: the ``ts`` indexes ``open`` must create
    ts_indexes: frozenset[str]
    #: the names of the indexes the ledger table has
    indexes: Callable[[], Awaitable[set[str]]]
    #: turn the table back into an earlier version's, without these columns
    drop_columns: Callable[[tuple[str, ...]], Awaitable[None]]
    #: what a batch breaking a NOT NULL constraint raises
    constraint_error: type[Exception]


@contextmanager
def _sqlite_db(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        yield db


def _sqlite(path: Path) -> Backend:
    table = "breakwater_ledger"  # SqliteLedger's fixed table

    def make(**kw: Any) -> Store:
        return SqliteLedger(path, **kw)

    async def indexes() -> set[str]:
        with _sqlite_db(path) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))
            return {r[0] for r in rows}

    async def drop_columns(names: tuple[str, ...]) -> None:
        with _sqlite_db(path) as db:
            # SQLite cannot drop an indexed column: the indexes on added columns go first (open remakes them)
            db.execute(f"DROP INDEX IF EXISTS {table}_dashboard")
            db.execute(f"DROP INDEX IF EXISTS {table}_shadow")
            for name in names:
                db.execute(f'ALTER TABLE {table} DROP COLUMN "{name}"')

    index_names = frozenset({f"{table}_ts", f"{table}_ts_user", f"{table}_ts_route"})
    return Backend(make, index_names, indexes, drop_columns, sqlite3.IntegrityError)


def _postgres(table: str) -> Backend:
    def make(**kw: Any) -> Store:
        return PostgresLedger(DSN, table=table, **kw)

    async def indexes() -> set[str]:
        conn = await asyncpg.connect(DSN)
        try:
            rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", table)
        finally:
            await conn.close()
        return {r["indexname"] for r in rows}

    async def drop_columns(names: tuple[str, ...]) -> None:
        await pg_execute(";".join(f'ALTER TABLE {table} DROP COLUMN "{name}"' for name in names))

    index_names = frozenset({f"{table}_ts", f"{table}_ts_user", f"{table}_ts_route"})
    return Backend(make, index_names, indexes, drop_columns, asyncpg.NotNullViolationError)


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each database in turn: a fresh SQLite file, or a fresh PostgreSQL table dropped after the test."""
    if request.param == "sqlite":
        yield _sqlite(tmp_path / "ledger.db")
        return
    async with table_of_its_own() as table:
        yield _postgres(table)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    """An open, empty store on the backend, closed after the test."""
    opened = backend.make()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def usage(store: Store) -> Store:
    """The store holding the hand-made day of usage (``rows.USAGE_ROWS``)."""
    await store.write(USAGE_ROWS)
    return store


# --- schema -------------------------------------------------------------------------------------


async def test_open_creates_the_table_and_its_ts_indexes(backend: Backend, store: Store) -> None:
    """``open`` creates the table, empty, with the ``ts``, ``ts, user`` and ``ts, route`` indexes."""
    assert backend.ts_indexes <= await backend.indexes()
    assert await store.count() == 0


async def test_reopening_keeps_rows(backend: Backend) -> None:
    """Opening an existing table keeps its rows (the schema is created only if missing); a closed
    store can be opened again."""
    for _ in range(2):
        store = backend.make()
        await store.open()
        await store.write([make_row(i) for i in range(3)])
        await store.close()
    store = backend.make()
    await store.open()
    try:
        assert await store.count() == 3
        await store.close()
        await store.open()
        assert await store.fetch() == [make_row(i) for i in range(3)]
    finally:
        await store.close()


async def test_a_table_from_before_the_added_columns_gains_them(backend: Backend) -> None:
    """Opening a table made by an earlier version adds the new columns; its rows stay, new rows fill them."""
    store = backend.make()
    await store.open()
    await store.write([make_row(0)])
    await store.close()
    await backend.drop_columns(ADDED_COLUMNS)  # back to the first schema
    store = backend.make()
    await store.open()
    try:
        await store.write([make_row(2)])
        old, new = await store.fetch()
    finally:
        await store.close()
    assert old.id == make_row(0).id and old.upstream_ms is None
    assert all(getattr(old, name) is None for name in ADDED_COLUMNS)
    assert old == dataclasses.replace(make_row(0), **dict.fromkeys(ADDED_COLUMNS))  # the rest intact
    assert new == make_row(2) and new.upstream_ms is not None


# --- writing and reading back -------------------------------------------------------------------


async def test_rows_round_trip_equal_in_write_order(store: Store) -> None:
    """Rows come back equal, in write order, across batches: exact Decimal cost, tags, booleans, text, None."""
    rows = [make_row(i) for i in range(50)]
    await store.write(rows[:20])
    await store.write(rows[20:])
    fetched = await store.fetch()
    assert fetched == rows
    assert await store.count() == 50
    for got, sent in zip(fetched, rows, strict=True):  # equal, and of the same types (True == 1, 0.1 == Decimal)
        assert all(type(getattr(got, f)) is bool for f in ("fallback", "stream", "usage_estimated"))
        assert type(got.cost_usd) is type(sent.cost_usd) and str(got.cost_usd) == str(sent.cost_usd)
        assert type(got.tags) is dict and got.tags == sent.tags
    assert fetched[0].prompt == "héllo ☃" and fetched[0].cost_usd == Decimal("0.0001234567")


async def test_fetch_returns_write_order_not_time_order(store: Store) -> None:
    """Rows read back in the order they were written, whatever their ``ts``."""
    order = [5, 1, 3, 0, 4]
    await store.write([make_row(5)])
    await store.write([make_row(1)])
    await store.write([make_row(3), make_row(0), make_row(4)])
    assert [r.id for r in await store.fetch()] == [make_row(i).id for i in order]


async def test_fetch_since_is_inclusive_and_limit_caps_the_rows(store: Store) -> None:
    """``fetch(since=...)`` returns rows with ``ts >= since``; ``limit`` keeps the first rows written."""
    rows = [make_row(i) for i in range(10)]
    await store.write(rows)
    assert await store.fetch(since=rows[4].ts) == rows[4:]
    assert await store.fetch(since=rows[4].ts, limit=3) == rows[4:7]
    assert await store.fetch(limit=1) == rows[:1]
    assert await store.fetch(since=rows[-1].ts + 1) == []


async def test_writing_the_same_rows_twice_stores_them_once(store: Store) -> None:
    """A replayed batch (same ids) is skipped, so a replay after a lost reply stores each row once."""
    rows = [make_row(i) for i in range(30)]
    await store.write(rows[:6])
    await store.write(rows[:10])  # overlaps the first batch
    assert await store.count() == 10
    assert await store.fetch() == rows[:10]
    await store.write(rows[:20])
    await store.write(rows[10:])  # overlaps: rows 10..19 twice
    assert await store.count() == 30
    assert await store.fetch() == rows


async def test_a_stored_row_is_kept_not_overwritten_by_a_replay(store: Store) -> None:
    """Writing a row whose ``id`` is stored leaves the stored row as it was (skipped, not updated)."""
    first = make_row(0)
    await store.write([first])
    await store.write([dataclasses.replace(first, user="mallory", cost_usd=Decimal(99), status=500)])
    assert await store.fetch() == [first]


async def test_a_batch_is_one_transaction(backend: Backend, store: Store) -> None:
    """A batch with one bad row stores none of its rows; the store then goes on writing."""
    await store.write([make_row(0)])
    bad = dataclasses.replace(make_row(2), user=None)  # type: ignore[arg-type]
    with pytest.raises(backend.constraint_error):
        await store.write([make_row(1), bad, make_row(3)])
    assert await store.count() == 1
    assert await store.fetch() == [make_row(0)]
    await store.write([make_row(1), make_row(3)])
    assert [r.id for r in await store.fetch()] == [make_row(i).id for i in (0, 1, 3)]


async def test_an_empty_ledger_answers_every_read_with_nothing(store: Store) -> None:
    """Empty batch, no rows: nothing counted, fetched, deleted or aggregated, and no error."""
    await store.write([])
    assert await store.count() == 0
    assert await store.fetch() == []
    assert await store.delete_before(T0 + 1e9) == 0
    for by in BY:
        tag_key = "team" if by == "tag" else None
        page = await aggregate(store, by=by, since=0, until=1e12, limit=10, offset=0, tag_key=tag_key)
        assert page.groups == [] and page.total == 0 and not page.has_more


# --- retention ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk", "rows", "older"),
    [(7, 40, 25), (4, 20, 13), (5, 20, 10)],
    ids=["chunk-7", "chunk-4", "exact-multiple"],
)
async def test_delete_before_purges_old_rows_in_chunks(backend: Backend, chunk: int, rows: int, older: int) -> None:
    """Retention deletes exactly the rows older than the cut-off, across several chunks (also when the
    count is a multiple of the chunk); a cut-off before every row deletes nothing."""
    store = backend.make(delete_chunk=chunk)
    await store.open()
    try:
        await store.write([make_row(i) for i in range(rows)])
        assert await store.delete_before(T0 + older * 0.001 - 1e-9) == older
        assert [r.id for r in await store.fetch()] == [make_row(i).id for i in range(older, rows)]
        assert await store.count() == rows - older
        assert await store.delete_before(T0) == 0
    finally:
        await store.close()


async def test_the_writer_lands_rows_and_retention_purges_old_ones(store: Store, tmp_path: Path) -> None:
    """The writer lands rows in the store; retention then deletes the ones older than max_age."""

    class Clock:
        def monotonic(self) -> float:
            return 0.0

        def time(self) -> float:
            return T0 + 100 * 0.001 + 0.050  # rows 0..49 are older than 0.1 s

        async def sleep(self, seconds: float) -> None:
            raise AssertionError("not used")

    writer = LedgerWriter(store, tmp_path / "s.jsonl", batch_size=64, flush_interval_s=0.005)
    writer.start()
    for i in range(100):
        writer.submit(make_row(i))
    await writer.stop()
    assert await store.count() == 100
    retention = Retention(store, max_age_s=0.1, interval_s=3600, clock=Clock())
    retention.start()
    await wait_for(lambda: retention.deleted == 50, "the first purge")
    await retention.stop()
    assert [r.id for r in await store.fetch()] == [make_row(i).id for i in range(50, 100)]


# --- the usage aggregate ------------------------------------------------------------------------


async def test_by_user_sums_counts_percentiles_and_order(usage: Store) -> None:
    """Per user: requests, errors, tokens, exact cost and saved cost, cache hit rate and nearest-rank
    percentiles, costliest first."""
    page = await aggregate(usage, by="user", since=START, until=START + DAY, limit=10, offset=0)
    assert page.total == 3
    assert not page.has_more
    assert [g["group"] for g in page.groups] == ["alice", "bob", "carol"]
    alice = page.groups[0]
    assert alice == {
        "group": "alice",
        "requests": 4,
        "errors": 1,
        "error_rate": 0.25,
        "input_tokens": 40,
        "cached_input_tokens": 4,
        "output_tokens": 20,
        "cost_usd": "0.3000000001",
        "saved_usd": "0.0500000000",
        "routing_saved_usd": "0.0150000000",
        "cache_hits": 1,
        "cache_hit_rate": 0.5,  # a hit among a hit and a miss; the rows with no cache are not counted
        "feedback": 0,
        "feedback_score": None,
        "latency_p50_ms": 20.0,  # ceil(0.5 * 4) = 2nd of 10, 20, 30, 40
        "latency_p95_ms": 40.0,
        "latency_p99_ms": 40.0,
    }
    assert page.groups[1]["cost_usd"] == "0.2500000009"
    assert page.groups[1]["errors"] == 1
    assert page.groups[2]["cost_usd"] == "0.0000000000"
    assert (page.groups[1]["cache_hit_rate"], page.groups[2]["cache_hit_rate"]) == (0.0, None)


async def test_pages_and_ties(usage: Store) -> None:
    """limit/offset walk the groups in order; ``has_more`` says whether another page follows."""
    first = await aggregate(usage, by="user", since=START, until=START + DAY, limit=2, offset=0)
    second = await aggregate(usage, by="user", since=START, until=START + DAY, limit=2, offset=2)
    assert [g["group"] for g in first.groups] == ["alice", "bob"]
    assert first.has_more
    assert [g["group"] for g in second.groups] == ["carol"]
    assert not second.has_more
    past = await aggregate(usage, by="user", since=START, until=START + DAY, limit=2, offset=5)
    assert past.groups == [] and not past.has_more


async def test_by_tag_day_and_columns(usage: Store) -> None:
    """Tag values group rows (rows without the tag form a ``None`` group); day is the UTC date."""
    page = await aggregate(usage, by="tag", tag_key="team", since=START, until=START + DAY, limit=10, offset=0)
    by_tag = {g["group"]: (g["requests"], g["cost_usd"]) for g in page.groups}
    assert by_tag == {
        "search": (2, "0.3000000000"),
        "ads": (2, "0.2500000001"),
        None: (3, "0.0000000009"),
    }
    days = await aggregate(usage, by="day", since=0, until=START + 2 * DAY, limit=10, offset=0)
    assert {g["group"]: g["requests"] for g in days.groups} == {"2023-11-15": 7, "2023-11-16": 1}
    for by in ("route", "model", "deployment", "key"):
        page = await aggregate(usage, by=by, since=START, until=START + DAY, limit=10, offset=0)
        assert page.total == 1 and page.groups[0]["requests"] == 7


async def test_the_window_holds_since_and_not_until(usage: Store) -> None:
    """A row at exactly ``since`` counts; a row at exactly ``until`` does not."""
    page = await aggregate(usage, by="user", since=START + 60, until=START + 120, limit=10, offset=0)
    assert [(g["group"], g["requests"], g["cost_usd"]) for g in page.groups] == [("alice", 1, "0.2000000000")]
    dave = await aggregate(usage, by="user", since=START + DAY, until=START + DAY + 1, limit=10, offset=0)
    assert [(g["group"], g["requests"]) for g in dave.groups] == [("dave", 1)]


async def test_tag_key_is_data_not_sql(usage: Store) -> None:
    """A tag key full of SQL and JSON-path punctuation matches nothing and breaks nothing."""
    page = await aggregate(
        usage, by="tag", tag_key="x') OR 1=1; --.$[0]", since=START, until=START + DAY, limit=10, offset=0
    )
    assert [(g["group"], g["requests"]) for g in page.groups] == [(None, 7)]


async def test_empty_window(usage: Store) -> None:
    """A window with no rows is an empty page, not an error."""
    page = await aggregate(usage, by="route", since=T0 - 10, until=T0 - 5, limit=10, offset=0)
    assert page.groups == [] and page.total == 0


# --- feedback -----------------------------------------------------------------------------------


def _feedback(request_id: str, score: float, *, key_id: str = "key-1", ts: float = START + DAY) -> Feedback:
    return Feedback(request_id, ts, key_id, score, "plutôt bien ☃", {"reason": "tone"})


async def test_a_request_is_found_by_its_id_and_key(store: Store) -> None:
    """``route_of`` finds a row by request id and key (any key when the key is None), nothing otherwise."""
    await store.write([make_row(0), dataclasses.replace(make_row(1), request_id="req-0", route="later")])
    assert await store.route_of("req-0", "key-1") == ("later", "key-1")  # the newest row of the id
    assert await store.route_of("req-0", None) == ("later", "key-1")
    assert await store.route_of("req-0", "key-2") is None
    assert await store.route_of("req-9", None) is None


async def test_feedback_round_trips_all_kept_in_order(store: Store) -> None:
    """Every feedback on a request is kept and read back equal (score, comment, tags), oldest first."""
    first, second = _feedback("req-0", 0.0), dataclasses.replace(_feedback("req-0", 1.0), comment=None, tags={})
    await store.write_feedback(first)
    await store.write_feedback(second)
    await store.write_feedback(_feedback("req-1", 0.5))
    assert await store.fetch_feedback("req-0") == [first, second]
    assert await store.fetch_feedback("req-9") == []


async def test_the_usage_report_counts_requests_with_feedback_and_their_newest_score(usage: Store) -> None:
    """Per group: requests with feedback, and the mean of each one's newest score; feedback under
    another key than the row's is not the row's."""
    for request_id, score in (("req-0", 0.0), ("req-0", 1.0), ("req-1", 0.5), ("req-4", 0.25)):
        await usage.write_feedback(_feedback(request_id, score))
    await usage.write_feedback(_feedback("req-6", 0.0, key_id="key-2"))  # carol's row is key-1's
    page = await aggregate(usage, by="user", since=START, until=START + DAY, limit=10, offset=0)
    assert [(g["group"], g["feedback"], g["feedback_score"]) for g in page.groups] == [
        ("alice", 2, 0.75),  # req-0's newest (1.0) and req-1's 0.5
        ("bob", 1, 0.25),
        ("carol", 0, None),
    ]
    assert page.groups[0]["requests"] == 4  # the join adds no rows
    (route,) = (await aggregate(usage, by="route", since=START, until=START + DAY, limit=10, offset=0)).groups
    assert (route["requests"], route["feedback"], route["feedback_score"]) == (7, 3, pytest.approx(1.75 / 3))


async def test_retention_deletes_old_feedback(store: Store) -> None:
    """Feedback older than the cut-off goes with the ledger rows."""
    await store.write_feedback(_feedback("req-0", 1.0, ts=T0))
    await store.write_feedback(_feedback("req-1", 1.0, ts=T0 + 10))
    await store.delete_before(T0 + 5)
    assert await store.fetch_feedback("req-0") == []
    assert len(await store.fetch_feedback("req-1")) == 1


# --- drift eval scores --------------------------------------------------------------------------


async def test_eval_scores_round_trip_by_route_and_time(store: Store) -> None:
    """Drift scores come back equal (score, pass, failed types), in write order, by route and ``since``."""
    first = Score("req-0", T0, "chat", 0.5, False, ("not-icontains", "regex"))
    second = Score("req-1", T0 + 10, "chat", 1.0, True, ())
    other = Score("req-2", T0 + 20, "other", 0.0, False, ("llm-rubric",))
    for score in (first, second, other):
        await store.write_eval_score(score)
    assert await store.fetch_eval_scores() == [first, second, other]
    assert await store.fetch_eval_scores(route="chat") == [first, second]
    assert await store.fetch_eval_scores(route="chat", since=T0 + 5) == [second]
    got = (await store.fetch_eval_scores(route="other"))[0]
    assert type(got.passed) is bool and type(got.failed) is tuple


async def test_retention_deletes_old_eval_scores(store: Store) -> None:
    """Drift scores older than the cut-off go with the ledger rows."""
    await store.write_eval_score(Score("req-0", T0, "chat", 1.0, True, ()))
    await store.write_eval_score(Score("req-1", T0 + 10, "chat", 1.0, True, ()))
    await store.delete_before(T0 + 5)
    assert [s.request_id for s in await store.fetch_eval_scores()] == ["req-1"]
