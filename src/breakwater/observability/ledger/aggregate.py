"""Reading usage back: ledger rows grouped by user, route, model, deployment, key, day or tag.

One SQL statement per dialect does all the work inside the database, so a query over a busy day
never brings the rows into Python. The rows of the window are grouped, ordered by cost then
requests, counted (``COUNT(*) OVER ()`` after grouping: the number of groups, for pagination) and
cut to one page; latencies are ranked per group (``ROW_NUMBER``) for nearest-rank percentiles.
PostgreSQL does it in one pass with ``percentile_disc``; SQLite finds the page's groups first and
ranks the latencies of those groups alone, so the sort, the costly part, shrinks with the page.

Cost is exact in both stores. PostgreSQL sums its ``NUMERIC(20,10)`` column. SQLite stores the
decimal as text; each row's cost is turned into integer units of 1e-10 USD (the PostgreSQL scale)
through a double, which is exact for any per-request cost below ~$400,000 (15 significant
digits), and the integers are summed exactly. Both report the sum as a decimal string with ten
places, so the two stores answer the same query with the same text.

SQLite is read through its own read-only connection on a worker thread: in WAL mode a reader
never blocks the ledger writer, and the writer's thread is never held by a long query.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.sqlite import SqliteLedger
from breakwater.observability.ledger.sqlite_schema import FEEDBACK_TABLE

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger

GROUP_COLUMNS = {
    "user": '"user"',
    "route": "route",
    "model": "upstream_model",
    "deployment": "deployment",
    "key": "key_id",
    # the serving deployment's region (data residency); '' for rows without one
    "region": "COALESCE(region, '')",
}
"""The groupings that are one ledger column each: a new column to group by is one more entry."""

BY = (*GROUP_COLUMNS, "day", "tag")
"""What usage can be grouped by (``tag`` needs a tag key)."""

_TABLE = "breakwater_ledger"  # SqliteLedger's fixed table
_SCALE = Decimal("1E-10")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MAX_LIMIT = 1000


#: each request's newest feedback given since the window's start (a feedback comes after its
#: request, so older ones cannot be about the window's rows); SQLite's rowid grows with each insert
def sqlite_newest_feedback(since: str) -> str:
    """Each request's newest feedback (per request id and key) given since the parameter ``since``
    (SQLite); its columns ``f_request``, ``f_key``, ``f_score``."""
    return (
        f"SELECT request_id AS f_request, key_id AS f_key, score AS f_score FROM {FEEDBACK_TABLE} WHERE rowid IN"
        f" (SELECT MAX(rowid) FROM {FEEDBACK_TABLE} WHERE ts >= {since} GROUP BY request_id, key_id)"
    )


def postgres_newest_feedback(table: str, since: str) -> str:
    """The same in PostgreSQL, from the feedback ``table`` (its identity column orders them)."""
    return (
        "SELECT DISTINCT ON (request_id, key_id) request_id AS f_request, key_id AS f_key, score AS f_score"
        f" FROM {table} WHERE ts >= {since} ORDER BY request_id, key_id, seq DESC"
    )


_SQLITE_NEWEST = sqlite_newest_feedback("?1")
_NO_FEEDBACK = "SELECT NULL AS f_request, NULL AS f_key, NULL AS f_score WHERE 0"


def _feedback_groups(group: str, newest: str, table: str, window: str) -> str:
    """Per group: the window's requests with feedback and their newest scores' mean.

    Driven from the feedback (far fewer rows than the ledger): each one finds its row through the
    ledger's ``request_id`` index, so a window without feedback costs nothing. The feedback's
    columns are renamed (``f_*``), so the group expression reads the ledger's own columns.
    """
    return f"""
        SELECT {group} AS g, COUNT(*) AS n, AVG(f_score) AS score
        FROM ({newest}) AS newest JOIN {table} ON request_id = f_request AND key_id = f_key
        WHERE {window} GROUP BY g
    """


def group_sql(by: str, tag_param: str, *, postgres: bool) -> str:
    """The expression rows are grouped by for ``by`` (one of ``BY``); a tag's key is bound to the
    placeholder ``tag_param``, as ``tag_bind`` gives it, never spliced: the key is data."""
    if by == "day":
        return "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')" if postgres else "date(ts, 'unixepoch')"
    if by == "tag":
        return f"tags->>{tag_param}" if postgres else f"json_extract(tags, {tag_param})"
    return GROUP_COLUMNS[by]


def tag_bind(tag_key: str, *, postgres: bool) -> str:
    """The value bound to ``group_sql``'s tag placeholder: the key, or SQLite's JSON path to it.

    Raises:
        ValueError: for SQLite, a key holding a double quote or a backslash (not a plain path).
    """
    if postgres:
        return tag_key
    if '"' in tag_key or "\\" in tag_key:
        raise ValueError("a tag key cannot hold a double quote or a backslash")
    return f'$."{tag_key}"'


# the nearest-rank index ceil(p * n) for p in percent, in integer arithmetic (SQLite has no ceil)
_RANKS = {"latency_p50_ms": 50, "latency_p95_ms": 95, "latency_p99_ms": 99}


@dataclass(frozen=True, slots=True)
class UsagePage:
    """One page of groups, best-paying first, and the number of groups in the whole window.

    ``total`` is 0 when the page is past the last group.
    """

    groups: list[dict[str, Any]]
    total: int
    offset: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.groups) < self.total


def parse_by(text: str) -> tuple[str, str | None]:
    """``user`` → ``("user", None)``; ``tag:team`` → ``("tag", "team")``.

    Raises:
        ValueError: not one of ``BY``, or ``tag`` without a key.
    """
    by, _, tag_key = text.partition(":")
    if by not in BY or (by == "tag") != bool(tag_key):
        raise ValueError(f"group by must be one of {', '.join(b for b in BY if b != 'tag')} or tag:<key>, got {text!r}")
    return by, tag_key or None


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``5m``, ``1h``, ``2d`` or ``1w``.

    Raises:
        ValueError: not one of those forms, or 0.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match.group(1)) == 0:
        raise ValueError(f"expected a duration above 0 (90s, 5m, 1h, 2d), got {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_instant(text: str, now: float) -> float:
    """Unix seconds for ``1732300000``, ``24h`` / ``7d`` / ``30m`` (ago), or an ISO date or time (UTC if naive).

    Raises:
        ValueError: none of those forms.
    """
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        return now - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected unix seconds, a duration ago (24h, 7d) or an ISO date/time (2026-11-01), got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


async def aggregate(
    store: SqliteLedger | PostgresLedger,
    *,
    by: str,
    since: float,
    until: float,
    limit: int = 50,
    offset: int = 0,
    tag_key: str | None = None,
) -> UsagePage:
    """Usage per group for rows with ``since <= ts < until``, ordered by cost, then requests.

    Each group: ``group`` (the user, route, ...; ``None`` for rows without the tag), ``requests``,
    ``errors`` (status >= 400), ``error_rate``, ``input_tokens``, ``cached_input_tokens``,
    ``output_tokens``, ``cost_usd`` (exact decimal string; rows without a cost count as 0),
    ``saved_usd`` (what answers served from the cache would have cost), ``routing_saved_usd``
    (what branching routes saved against their baseline branch, docs/routing.md), ``cache_hits`` and
    ``cache_hit_rate`` (answers served from the cache among the requests looked up in it; ``None``
    when none was), ``feedback`` (requests with user feedback) and ``feedback_score`` (their mean
    score, each request's newest feedback counting once; ``None`` without feedback), and
    ``latency_p50_ms`` / ``latency_p95_ms`` / ``latency_p99_ms`` (nearest rank).

    Args:
        store: the ledger store to read.
        by: one of ``BY``.
        since: window start, unix seconds (inclusive).
        until: window end, unix seconds (exclusive).
        limit: groups per page (1..1000).
        offset: groups to skip.
        tag_key: the tag whose value groups the rows, when ``by == "tag"``.

    Raises:
        ValueError: a bad ``by``, ``tag_key``, ``limit`` or ``offset``.
    """
    if by not in BY:
        raise ValueError(f"cannot group by {by!r}")
    if (by == "tag") != (tag_key is not None) or tag_key == "":
        raise ValueError("a tag key is needed with (and only with) by='tag'")
    if not 1 <= limit <= _MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {_MAX_LIMIT}")
    if offset < 0:
        raise ValueError("offset must not be negative")
    if isinstance(store, SqliteLedger):
        if tag_key is not None:
            tag_bind(tag_key, postgres=False)  # raises on a key SQLite cannot look up
        rows = await asyncio.to_thread(_sqlite_query, store, by, since, until, limit, offset, tag_key)
        return _page(rows, offset)
    return await _postgres_query(store, by, since, until, limit, offset, tag_key)


#: the sum of the routers' savings, on a ledger file that has the column
_SQLITE_ROUTED = "COALESCE(SUM(CAST(ROUND(CAST(routing_saved_usd AS REAL) * 1e10) AS INTEGER)), 0)"


def _rank(p: int) -> str:
    """The nearest-rank index ceil(p% of k) in integer arithmetic (SQLite has no ceil)."""
    return f"({p} * k + 99) / 100"


def _percentiles() -> str:
    return ", ".join(f"MAX(CASE WHEN rn = {_rank(p)} THEN latency_ms END) AS {name}" for name, p in _RANKS.items())


def _sqlite_query(
    store: SqliteLedger, by: str, since: float, until: float, limit: int, offset: int, tag_key: str | None
) -> list[tuple[Any, ...]]:
    params: list[Any] = [since, until, limit, offset]
    group = group_sql(by, "?5", postgres=False)
    if tag_key is not None:
        params.append(tag_bind(tag_key, postgres=False))
    # The page's groups first (sums only, no sort of the rows); then latencies are ranked for
    # those groups alone, so grouping by user sorts the latencies of 50 users, not of every user.
    sql = f"""
        WITH feedback AS ({_feedback_groups(group, "{newest}", _TABLE, "ts >= ?1 AND ts < ?2")}),
        page AS (
            SELECT {group} AS g, COUNT(*) AS n, SUM(status >= 400) AS errors, SUM(input_tokens) AS i,
                   SUM(cached_input_tokens) AS c, SUM(output_tokens) AS o,
                   COALESCE(SUM(CAST(ROUND(CAST(cost_usd AS REAL) * 1e10) AS INTEGER)), 0) AS cost,
                   SUM(cache IN ('hit', 'semantic-hit', 'stale')) AS h,
                   SUM(cache IN ('hit', 'semantic-hit', 'stale', 'miss')) AS l,
                   COALESCE(SUM(CAST(ROUND(CAST(saved_usd AS REAL) * 1e10) AS INTEGER)), 0) AS saved,
                   {{routed}} AS routed, COUNT(*) OVER () AS total
            FROM {_TABLE} WHERE ts >= ?1 AND ts < ?2
            GROUP BY g ORDER BY cost DESC, n DESC, g IS NULL, g LIMIT ?3 OFFSET ?4
        ), ranked AS (
            SELECT g, latency_ms, ROW_NUMBER() OVER w AS rn,
                   COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS k
            FROM (
                SELECT {group} AS g, latency_ms FROM {_TABLE}
                WHERE ts >= ?1 AND ts < ?2 AND ({group} IN (SELECT g FROM page)
                      OR ({group} IS NULL AND EXISTS (SELECT 1 FROM page WHERE g IS NULL)))
            )
            WINDOW w AS (PARTITION BY g ORDER BY latency_ms)  -- one sort serves both
        ), picks AS (
            SELECT g, {_percentiles()} FROM ranked
            WHERE rn IN ({", ".join(_rank(p) for p in _RANKS.values())}) GROUP BY g
        )
        SELECT p.g, p.n, p.errors, p.i, p.c, p.o, p.cost, p.h, p.l, p.saved, p.routed, COALESCE(f.n, 0), f.score,
               {", ".join(f"q.{name}" for name in _RANKS)}, p.total
        FROM page p LEFT JOIN picks q ON q.g IS p.g LEFT JOIN feedback f ON f.g IS p.g
        ORDER BY p.cost DESC, p.n DESC, p.g IS NULL, p.g
    """
    uri = f"{store.path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.OperationalError:
        if not store.path.exists():
            return []  # nothing written yet
        raise
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if _TABLE not in tables:
            return []
        # a ledger file of an earlier version, never opened by this one, has no feedback table
        feedback = _SQLITE_NEWEST if FEEDBACK_TABLE in tables else _NO_FEEDBACK
        # ... nor the columns added since
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({_TABLE})")}
        routed = _SQLITE_ROUTED if "routing_saved_usd" in columns else "0"
        return conn.execute(sql.replace("{newest}", feedback).replace("{routed}", routed), params).fetchall()
    finally:
        conn.close()


async def _postgres_query(
    store: PostgresLedger, by: str, since: float, until: float, limit: int, offset: int, tag_key: str | None
) -> UsagePage:
    params: list[Any] = [since, until, limit, offset]
    group = group_sql(by, "$5", postgres=True)
    if tag_key is not None:
        params.append(tag_key)
    newest = postgres_newest_feedback(store.feedback_table, "$1")
    feedback = _feedback_groups(group, newest, store.table, "ts >= $1 AND ts < $2")
    percentiles = ", ".join(
        f"percentile_disc({p / 100}) WITHIN GROUP (ORDER BY latency_ms) AS {name}" for name, p in _RANKS.items()
    )
    sql = f"""
        WITH feedback AS ({feedback}),
        page AS (
            SELECT {group} AS g, count(*) AS n, count(*) FILTER (WHERE status >= 400) AS errors,
                   sum(input_tokens) AS i, sum(cached_input_tokens) AS c, sum(output_tokens) AS o,
                   COALESCE(sum(cost_usd), 0) AS cost,
                   count(*) FILTER (WHERE cache IN ('hit', 'semantic-hit', 'stale')) AS h,
                   count(*) FILTER (WHERE cache IN ('hit', 'semantic-hit', 'stale', 'miss')) AS l,
                   COALESCE(sum(saved_usd), 0) AS saved, COALESCE(sum(routing_saved_usd), 0) AS routed,
                   {percentiles}, count(*) OVER () AS total
            FROM {store.table} WHERE ts >= $1 AND ts < $2
            GROUP BY g ORDER BY cost DESC, count(*) DESC, {group} IS NULL, {group} LIMIT $3 OFFSET $4
        )
        SELECT p.g, p.n, p.errors, p.i, p.c, p.o, p.cost, p.h, p.l, p.saved, p.routed, COALESCE(f.n, 0), f.score,
               {", ".join(f"p.{name}" for name in _RANKS)}, p.total
        FROM page p LEFT JOIN feedback f ON f.g IS NOT DISTINCT FROM p.g
        ORDER BY p.cost DESC, p.n DESC, p.g IS NULL, p.g
    """
    # the store's own connection and lock (PostgresLedger has no public read-query method)
    records = await store._call("fetch", sql, *params)
    return _page([tuple(r) for r in records], offset)


def _money(value: Any) -> Decimal:
    """SQLite sums integer units of 1e-10 USD; PostgreSQL a Decimal already."""
    return Decimal(value).scaleb(-10) if isinstance(value, int) else Decimal(value)


def _page(rows: list[tuple[Any, ...]], offset: int) -> UsagePage:
    groups = []
    for (
        g,
        requests,
        errors,
        input_t,
        cached_t,
        output_t,
        cost,
        hits,
        lookups,
        saved,
        routed,
        fb,
        score,
        *ranks,
        _,
    ) in rows:
        p50, p95, p99 = ranks
        value, saved_value = _money(cost), _money(saved)
        groups.append(
            {
                "group": g,
                "requests": int(requests),
                "errors": int(errors),
                "error_rate": int(errors) / int(requests),
                "input_tokens": int(input_t),
                "cached_input_tokens": int(cached_t),
                "output_tokens": int(output_t),
                "cost_usd": format(value.quantize(_SCALE), "f"),
                "saved_usd": format(saved_value.quantize(_SCALE), "f"),
                "routing_saved_usd": format(_money(routed).quantize(_SCALE), "f"),
                "cache_hits": int(hits or 0),
                "cache_hit_rate": int(hits or 0) / int(lookups) if lookups else None,
                "feedback": int(fb),
                "feedback_score": None if score is None else float(score),
                "latency_p50_ms": float(p50),
                "latency_p95_ms": float(p95),
                "latency_p99_ms": float(p99),
            }
        )
    total = int(rows[0][-1]) if rows else 0
    return UsagePage(groups, total, offset)
