"""Shadow traffic's headline figures for a route, summed by the database (the dashboard's
rollouts page): how many candidate calls were paired with the request they mirrored, how many
failed, how often the answers matched exactly, and their mean similarity.

The same pairs as ``shadow_report`` (its figures of the same names agree): a candidate call's
row (``shadow_of`` set) and the row of the request it mirrors, a request of ``route`` (not itself
a shadow call), both in the window. The candidate rows are found through the partial
``shadow_of`` index and their requests through the ``request_id`` index, so no row of the window
other than the shadow pairs is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.reading import dialect_of, fetch

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger


async def shadow_stats(
    store: SqliteLedger | PostgresLedger, *, route: str, since: float, until: float
) -> dict[str, Any]:
    """``pairs``, ``candidate_errors``, ``candidate_error_rate``, ``exact_agreement`` (the share of
    answered pairs compared exactly whose answers matched; ``None`` without any),
    ``similarity_measured`` and ``similarity_mean`` (rounded to 4 places; ``None`` without any).

    Raises:
        ValueError: an empty route or a bad window.
    """
    if not route:
        raise ValueError("route must not be empty")
    if not until > since:
        raise ValueError("until must be after since")
    d = dialect_of(store)
    answered = "c.status < 400"
    sql = f"""
        SELECT COUNT(*),
               SUM(CASE WHEN c.status >= 400 THEN 1 ELSE 0 END),
               SUM(CASE WHEN {answered} AND c.shadow_exact IS NOT NULL THEN 1 ELSE 0 END),
               SUM(CASE WHEN {answered} AND c.shadow_exact THEN 1 ELSE 0 END),
               COUNT(CASE WHEN {answered} THEN c.shadow_similarity END),
               AVG(CASE WHEN {answered} THEN c.shadow_similarity END)
        FROM {d.table} AS c JOIN {d.table} AS p ON p.request_id = c.shadow_of
        WHERE c.shadow_of IS NOT NULL AND c.ts >= ?1 AND c.ts < ?2
          AND p.route = ?3 AND p.shadow_of IS NULL AND p.ts >= ?1 AND p.ts < ?2
    """
    (rows,) = await fetch(store, (sql, [since, until, route]))
    pairs, errors, compared, exact, measured, mean = rows[0] if rows else (0, 0, 0, 0, 0, None)
    pairs, errors, compared, exact, measured = (int(x or 0) for x in (pairs, errors, compared, exact, measured))
    return {
        "route": route,
        "pairs": pairs,
        "candidate_errors": errors,
        "candidate_error_rate": None if pairs == 0 else round(errors / pairs, 4),
        "exact_agreement": None if compared == 0 else round(exact / compared, 4),
        "similarity_measured": measured,
        "similarity_mean": None if mean is None else round(float(mean), 4),
    }
