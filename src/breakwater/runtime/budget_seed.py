"""Budgets that survive a restart: this period's spend read back from the ledger at start-up.

Memory counters begin empty, so without this a restarted single-process gateway would forget
what every key, team, user and tag had spent this day, week, month or ever, and its budgets
would start over. The ledger holds every request's cost, so at start-up each budget is seeded
with the ledger's spend since its period began (a team's is the sum over its keys). With the
Redis backend the counters outlive the process and nothing is seeded (keep Redis persistent, or
its restart resets budgets the same way).

Rows still in the ledger's spool when the process starts are replayed after this read, so their
spend is not counted: at most the few seconds of requests before the previous process stopped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from breakwater.core.keys import EVERY_USER, AccessSnapshot
from breakwater.core.limits import Period, period_span
from breakwater.engine.limits.checks import Scope
from breakwater.engine.limits.quota import Quota
from breakwater.observability.ledger.aggregate import aggregate
from breakwater.observability.ledger.service import Store

log = logging.getLogger("breakwater.limits")

_PAGE = 1000


async def seed_budgets(quota: Quota, snapshot: AccessSnapshot, store: Store, now: float) -> int:
    """Seed every budget in ``snapshot`` with its spend so far this period; return how many were seeded."""
    reader = _Spend(store, now)
    seeded = 0
    for key in snapshot.keys:
        budget = key.limits.budget
        if budget is not None and key.revoked_at is None:
            spent = (await reader.by("key", None, budget.period)).get(key.id, Decimal(0))
            seeded += await _seed(quota, Scope("key", key.id, "", key.limits), spent)
    for team in snapshot.teams:
        budget = team.limits.budget
        if budget is not None:
            by_key = await reader.by("key", None, budget.period)
            spent = sum((by_key.get(k.id, Decimal(0)) for k in snapshot.keys if k.team == team.name), Decimal(0))
            seeded += await _seed(quota, Scope("team", team.name, "", team.limits), spent)
    for entry in snapshot.limits:
        budget = entry.limits.budget
        if budget is None:
            continue
        if entry.scope == "user":
            by_user = await reader.by("user", None, budget.period)
            users = by_user if entry.subject == EVERY_USER else {entry.subject: by_user.get(entry.subject, Decimal(0))}
            for user, spent in users.items():
                if entry.subject == EVERY_USER and any(
                    e.scope == "user" and e.subject == user for e in snapshot.limits
                ):
                    continue  # a user with an entry of their own is seeded under it
                seeded += await _seed(quota, Scope("user", user, "", entry.limits), spent)
        else:
            tag_key, _, value = entry.subject.partition("=")
            spent = (await reader.by("tag", tag_key, budget.period)).get(value, Decimal(0))
            seeded += await _seed(quota, Scope("tag", entry.subject, "", entry.limits), spent)
    if seeded:
        log.info("budgets seeded from the ledger: %d with spend this period", seeded)
    return seeded


async def _seed(quota: Quota, scope: Scope, spent: Decimal) -> int:
    if spent <= 0:
        return 0
    await quota.seed(scope, spent)
    return 1


class _Spend:
    """Ledger spend per group since a period's start, each (grouping, period) read once."""

    def __init__(self, store: Store, now: float) -> None:
        self._store = store
        self._now = now
        self._cache: dict[tuple[str, str | None, Period], dict[str, Decimal]] = {}

    async def by(self, group: str, tag_key: str | None, period: Period) -> dict[str, Decimal]:
        found = self._cache.get((group, tag_key, period))
        if found is not None:
            return found
        since = period_span(period, self._now).start
        spend: dict[str, Decimal] = defaultdict(Decimal)
        offset = 0
        while True:
            page = await aggregate(
                self._store, by=group, since=since, until=self._now + 1, limit=_PAGE, offset=offset, tag_key=tag_key
            )
            for g in page.groups:
                if g["group"] is not None:
                    spend[str(g["group"])] += Decimal(g["cost_usd"])
            offset += len(page.groups)
            if not page.has_more or not page.groups:
                break
        self._cache[(group, tag_key, period)] = dict(spend)
        return self._cache[(group, tag_key, period)]
