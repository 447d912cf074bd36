"""The ledger's busiest moment: the most requests in one time bucket of a window, as a rate.

``breakwater loadtest --from-ledger`` drives a gateway at a multiple of it ("load test at 2-3x
peak"). The rows are counted per bucket of ``bucket_s`` seconds (``floor(ts / bucket_s)``)
inside the database, by ``bucketing.grouped_sums`` (the dashboard's reader, one query text for
both stores), and the fullest bucket is kept. A bucket of a minute smooths single-second bursts
that a gateway's queues absorb anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from breakwater.observability.ledger.bucketing import grouped_sums
from breakwater.observability.ledger.reading import dialect_of

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger


@dataclass(frozen=True, slots=True)
class Peak:
    """The fullest bucket: its start (unix seconds), its requests, and their rate per second."""

    start: float
    requests: int
    bucket_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.bucket_s


async def peak(
    store: SqliteLedger | PostgresLedger,
    *,
    since: float,
    until: float,
    bucket_s: float = 60.0,
    route: str | None = None,
) -> Peak | None:
    """The fullest ``bucket_s`` bucket of rows with ``since <= ts < until`` (of ``route`` alone when
    given; the earliest of equally full ones); ``None`` when the window has no rows.

    Raises:
        ValueError: ``bucket_s`` not positive.
    """
    if bucket_s <= 0:
        raise ValueError("the bucket must be positive")
    where, params = ("", (float(bucket_s),)) if route is None else (" AND route = ?4", (float(bucket_s), route))
    found = await grouped_sums(store, dialect_of(store), (since, until), ["floor(ts / ?3)"], [], where, params)
    if not found:
        return None
    bucket, (requests,) = min(found.items(), key=lambda kv: (-int(kv[1][0]), float(kv[0][0])))
    return Peak(start=float(bucket[0]) * bucket_s, requests=int(requests), bucket_s=bucket_s)
