"""The request explorer: ledger rows found by a filter, newest first, a page at a time; and one
request's rows (its own and its shadow calls').

Pages are keyset-paginated on ``(ts, id)``: the cursor names the last row shown, and the next
page starts strictly after it in the order ``ts DESC, id DESC``, so rows written while someone
pages never shift a page nor show a row twice. The cursor is opaque to callers (base64 of the
last row's ``ts`` and ``id``). Ids are compared byte by byte in both stores (PostgreSQL's ``"C"``
collation, SQLite's default), so both page alike.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.observability.ledger.reading import dialect_of, fetch
from breakwater.observability.ledger.row import COLUMNS, LedgerRow
from breakwater.observability.ledger.sqlite import row_from_values

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger

MAX_LIMIT = 500
"""The most rows one page of a search may hold."""

#: longer filter values match nothing a ledger holds (ids, names and tags are shorter)
_MAX_TEXT = 512
_STATUS = {
    "ok": "status < 400",
    "error": "status >= 400",
    "4xx": "status >= 400 AND status < 500",
    "5xx": "status >= 500 AND status < 600",
}
_CODE = re.compile(r"[1-5][0-9][0-9]")
_COLS = ", ".join(f'"{c}"' for c in COLUMNS)


@dataclass(frozen=True, slots=True)
class RowFilter:
    """Which rows a search returns: ``since <= ts < until`` and every other field that is set.

    Raises:
        ValueError: (on construction) a bad window, status, empty text or negative bound.
    """

    since: float
    until: float
    route: str | None = None
    user: str | None = None
    key_id: str | None = None
    #: ``ok`` (< 400), ``error`` (>= 400), ``4xx``, ``5xx``, or an exact code such as ``429``
    status: str | None = None
    #: the upstream model or the deployment
    model: str | None = None
    min_cost_usd: Decimal | None = None
    min_latency_ms: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.since) and math.isfinite(self.until)):
            raise ValueError("since and until must be finite unix seconds")
        if self.until <= self.since:
            raise ValueError("until must be after since")
        for name in ("route", "user", "key_id", "model"):
            value = getattr(self, name)
            if value is not None and not 0 < len(value) <= _MAX_TEXT:
                raise ValueError(f"{name} must be between 1 and {_MAX_TEXT} characters")
        if self.status is not None and self.status not in _STATUS and not _CODE.fullmatch(self.status):
            raise ValueError(f"status must be ok, error, 4xx, 5xx or a code such as 429, got {self.status!r}")
        cost = self.min_cost_usd
        if cost is not None and (not isinstance(cost, Decimal) or not cost.is_finite() or cost < 0):
            raise ValueError("min_cost_usd must be a finite decimal, not negative")
        latency = self.min_latency_ms
        if latency is not None and (not math.isfinite(latency) or latency < 0):
            raise ValueError("min_latency_ms must be a finite number of milliseconds, not negative")


def encode_cursor(ts: float, row_id: str) -> str:
    """The cursor that continues after the row ``(ts, row_id)``."""
    return base64.urlsafe_b64encode(orjson.dumps([ts, row_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """``encode_cursor``'s ``(ts, id)``.

    Raises:
        ValueError: not a cursor ``search`` gave.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise ValueError("bad cursor") from None
    match value:
        case [int() | float() as ts, str() as row_id] if not isinstance(ts, bool) and math.isfinite(ts):
            return float(ts), row_id
    raise ValueError("bad cursor")


async def search(
    store: SqliteLedger | PostgresLedger, f: RowFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[LedgerRow], str | None]:
    """A page of the rows ``f`` matches, newest first, and the cursor of the next page (``None``
    after the last).

    Args:
        store: the ledger store to read.
        f: the filter.
        limit: rows per page (1..``MAX_LIMIT``).
        cursor: the previous page's cursor, to continue after it.

    Raises:
        ValueError: a bad ``limit`` or ``cursor``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    d = dialect_of(store)
    params: list[Any] = [f.since, f.until]
    where = ["ts >= ?1", "ts < ?2"]

    def bind(value: Any) -> str:
        params.append(value)
        return f"?{len(params)}"

    for column, value in (("route", f.route), ('"user"', f.user), ("key_id", f.key_id)):
        if value is not None:
            where.append(f"{column} = {bind(value)}")
    if f.model is not None:
        model = bind(f.model)
        where.append(f"(upstream_model = {model} OR deployment = {model})")
    if f.status is not None:
        where.append(_STATUS.get(f.status) or f"status = {bind(int(f.status))}")
    if f.min_cost_usd is not None:
        where.append(f"{d.money_units('cost_usd')} >= {bind(d.money_param(f.min_cost_usd))}")
    if f.min_latency_ms is not None:
        where.append(f"latency_ms >= {bind(float(f.min_latency_ms))}")
    row_id = d.binary("id")
    if cursor is not None:
        after_ts, after_id = decode_cursor(cursor)
        ts, last = bind(after_ts), bind(after_id)
        where.append(f"(ts < {ts} OR (ts = {ts} AND {row_id} < {last}))")
    sql = f"""
        SELECT {_COLS} FROM {d.table} WHERE {" AND ".join(where)}
        ORDER BY ts DESC, {row_id} DESC LIMIT {bind(limit + 1)}
    """
    (records,) = await fetch(store, (sql, params))
    rows = [row_from_values(r) for r in records[:limit]]
    more = len(records) > limit
    return rows, encode_cursor(rows[-1].ts, rows[-1].id) if more else None


async def request_rows(store: SqliteLedger | PostgresLedger, request_id: str) -> list[LedgerRow]:
    """The rows of ``request_id``: its own row, then its shadow calls' rows (``shadow_of``), each
    group oldest first.

    Raises:
        ValueError: an empty or overlong request id.
    """
    if not 0 < len(request_id) <= _MAX_TEXT:
        raise ValueError(f"a request id has 1 to {_MAX_TEXT} characters")
    d = dialect_of(store)
    row_id = d.binary("id")
    sql = f"""
        SELECT {_COLS} FROM {d.table} WHERE request_id = ?1 OR shadow_of = ?1
        ORDER BY CASE WHEN shadow_of = ?1 THEN 1 ELSE 0 END, ts, {row_id}
    """
    (records,) = await fetch(store, (sql, [request_id]))
    return [row_from_values(r) for r in records]
