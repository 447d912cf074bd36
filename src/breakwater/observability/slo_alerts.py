"""Burn-rate alerts on the routes' SLOs, and the background task that measures them (docs/slo.md).

Every ``REFRESH_S`` the task measures each objective from the ledger (``observability/slo.py``)
and checks the multi-window, multi-burn-rate rules. An alert fires once per crossing per route
objective, to the alert outbox (the log and the webhook). With Redis, one process of the fleet
leads and alerts, and the active set is kept in Redis (``infra/alert_exchange``, under its own
``slo:`` namespace), so a fleet pages once; every process still measures, for its ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from breakwater.engine.tasks import stop_task
from breakwater.observability.alerts import Alert
from breakwater.observability.slo import WINDOWS, Objective, SloStatus, measure

if TYPE_CHECKING:
    from breakwater.observability.ledger.service import Store

log = logging.getLogger("breakwater.slo")


@dataclass(frozen=True, slots=True)
class BurnRule:
    """Alert when the burn rate is at least ``factor`` over both ``long_s`` and ``short_s``."""

    name: str
    severity: str
    factor: float
    long_s: float
    short_s: float


RULES = (
    BurnRule("page_1h", "page", 14.4, 3600.0, 300.0),
    BurnRule("page_6h", "page", 6.0, 6 * 3600.0, 1800.0),
    BurnRule("ticket_3d", "ticket", 1.0, 3 * 86400.0, 6 * 3600.0),
)
"""The Google SRE workbook's rule set ("Alerting on SLOs", multiwindow multi-burn-rate):
2% of the budget gone in an hour or 5% in six hours pages; 10% in three days opens a ticket.
The short window (a twelfth of the long one) makes the alert stop soon after the burn stops."""


REFRESH_S = 30.0
"""How often the background task measures the objectives again (and so how soon an alert fires)."""


def _label(span: float) -> str:
    return next(label for label, s in WINDOWS.items() if s == span)


class SloFleet(Protocol):
    """Where the processes of a fleet agree on who alerts, and on which alerts are active
    (``infra/alert_exchange.RedisAlertExchange`` under its own namespace)."""

    async def lead(self, ttl_s: float) -> bool: ...

    async def active(self) -> set[tuple[str, str]]: ...

    async def set_active(self, active: Iterable[tuple[str, str]], keep_s: float) -> None: ...

    async def release(self) -> None: ...

    async def close(self) -> None: ...


Active = tuple[str, str, str]
"""``(route, objective, rule)``: a burn rule that held at the last refresh."""


class SloMonitor:
    """The routes' objectives, their last measurement, and which burn alerts are active.

    Args:
        store: the ledger store.
        objectives_: what to measure (``slo.objectives(config.routes)``).
        now: the clock.
        alert: where an alert goes when it starts (``AlertOutbox.push``: the log and the webhook).
        active: alerts already active (carried over a reload, so they do not fire again).
        fleet: with Redis, only the process that leads raises alerts, and which are active is
            kept there, so the fleet pages once per crossing; Redis down, every process alerts
            on its own (a page twice rather than none).
    """

    def __init__(
        self,
        store: Store,
        objectives_: list[Objective],
        now: Callable[[], float],
        alert: Callable[[Alert], None],
        active: set[Active] | None = None,
        fleet: SloFleet | None = None,
    ) -> None:
        self.store = store
        self.objectives = objectives_
        self._now = now
        self._alert = alert
        self.fleet = fleet
        #: the burn rules that held at the last refresh
        self.active: set[Active] = set() if active is None else active
        #: the last measurement (``/metrics``); empty until the first refresh
        self.view: list[SloStatus] = []
        self.fired = 0
        #: routes with a page rule holding: they shed optional work (shadow mirrors, drift samples)
        self.shedding: frozenset[str] = frozenset()

    def burning(self, route: str) -> bool:
        """Whether ``route``'s error budget burns fast enough to page (it sheds optional work)."""
        return route in self.shedding

    async def measure(self) -> list[SloStatus]:
        """The objectives now, read from the ledger (``GET /admin/slo``); no alert is raised."""
        return await measure(self.store, self.objectives, self._now())

    async def refresh(self, interval_s: float = REFRESH_S) -> list[Alert]:
        """Measure, keep the view, and raise the alerts whose condition started holding (only the
        fleet's leader raises them; the others keep the view and the active set alone)."""
        self.view = await self.measure()
        leading = await self._lead(interval_s)
        fired = []
        for status in self.view:
            o = status.objective
            before = [i for i, rule in enumerate(RULES) if (o.route, o.name, rule.name) in self.active]
            holding = [i for i, rule in enumerate(RULES) if _holds(status, rule)]
            for rule in RULES:
                self.active.discard((o.route, o.name, rule.name))
            self.active.update((o.route, o.name, RULES[i].name) for i in holding)
            # one alert per crossing per objective: the most urgent rule that starts holding, unless
            # an alert at least as urgent is already active (a slow burn under a page says nothing new)
            new = [i for i in holding if i not in before]
            if leading and new and (not before or min(new) < min(before)):
                fired.append(_alert(status, RULES[min(new)]))
        pages = {rule.name for rule in RULES if rule.severity == "page"}
        self.shedding = frozenset(route for route, _, rule in self.active if rule in pages)
        if leading and self.fleet is not None:
            await self._share(interval_s)
        for alert in fired:
            self._alert(alert)
            self.fired += 1
        return fired

    async def _lead(self, interval_s: float) -> bool:
        """Whether this process raises the alerts this round; a new leader takes the fleet's active set."""
        if self.fleet is None:
            return True
        try:
            if not await self.fleet.lead(3 * interval_s):
                return False
            self.active = {(*_decode(subject), rule) for rule, subject in await self.fleet.active()}
        except ConnectionError as exc:
            log.warning("SLO alerts: %s; this process alerts on its own this round", exc)
        return True

    async def _share(self, interval_s: float) -> None:
        assert self.fleet is not None
        try:
            pairs = [(rule, orjson.dumps([route, name]).decode()) for route, name, rule in self.active]
            await self.fleet.set_active(pairs, max(RULES[-1].long_s, 3 * interval_s))
        except ConnectionError as exc:
            log.warning("SLO alerts: %s; the active alerts were not shared", exc)


def _decode(subject: str) -> tuple[str, str]:
    route, name = orjson.loads(subject)
    return str(route), str(name)


def _holds(status: SloStatus, rule: BurnRule) -> bool:
    """Both windows burn at ``rule.factor`` or more, and the long one holds enough requests."""
    long_, short = status.burn[_label(rule.long_s)], status.burn[_label(rule.short_s)]
    if long_ is None or short is None or status.requests[_label(rule.long_s)] < status.objective.min_requests:
        return False
    return long_ >= rule.factor and short >= rule.factor


def _alert(status: SloStatus, rule: BurnRule) -> Alert:
    o = status.objective
    long_label, short_label = _label(rule.long_s), _label(rule.short_s)
    long_, short = status.burn[long_label] or 0.0, status.burn[short_label] or 0.0
    return Alert(
        rule="slo_burn",
        subject=f"{o.route}/{o.name}",
        message=(
            f"route {o.route!r} {o.name} error budget burning at {long_:.1f}x over {long_label}"
            f" and {short:.1f}x over {short_label} (>= {rule.factor}x: {rule.severity})"
        ),
        value=long_,
        threshold=rule.factor,
        at=status.at,
        details={
            "route": o.route,
            "objective": o.name,
            "severity": rule.severity,
            "burn_rule": rule.name,
            "short_burn_rate": short,
            "budget_remaining": status.budget_remaining,
        },
    )


class SloTask:
    """Refreshes the monitor every ``interval_s`` in the background; stopped with the runtime."""

    def __init__(self, monitor: SloMonitor, interval_s: float = REFRESH_S) -> None:
        self.monitor = monitor
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-slo")

    async def _run(self) -> None:
        while True:
            try:
                await self.monitor.refresh(self._interval)
            except Exception:
                log.exception("SLO refresh failed (the ledger could not be read); the last view stays")
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        """Stop refreshing; a lead this process holds is given up (another takes it next round)."""
        task, self._task = self._task, None
        await stop_task(task)
        fleet = self.monitor.fleet
        if fleet is not None:
            await fleet.release()
            await fleet.close()
