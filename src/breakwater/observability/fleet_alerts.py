"""Traffic alerts over the whole fleet: every worker's samples, evaluated by one of them.

Each round (``AlertTask``, every ``alerts.interval_s``, off the request path) a worker publishes
the samples it observed since its last round, then asks for the lead. The leader reads the
fleet's samples within the rules' horizon and which alerts were active, evaluates the rules
(``Alerts.over``: the same rules as one worker's), and stores the alerts active now; the other
workers deliver nothing. So an alert sees all the traffic and fires once per crossing for the
fleet, whichever worker happens to lead. The exchange is ``infra/alert_exchange.RedisAlertExchange``.

When Redis does not answer, a round does nothing but keep its samples (those still within the
horizon) for the next one, and logs one warning per outage.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from breakwater.observability.alerts import Alert, Alerts

__all__ = ["AlertExchange", "FleetAlerts"]

log = logging.getLogger("breakwater.alerts")


class AlertExchange(Protocol):
    """Where the samples of every worker meet; methods raise ``ConnectionError`` when it is out of reach."""

    async def publish(self, samples: Sequence[Sequence[Any]], keep_s: float) -> None: ...

    async def lead(self, ttl_s: float) -> bool: ...

    async def window(self, since: float) -> list[tuple[Any, ...]]: ...

    async def active(self) -> set[tuple[str, str]]: ...

    async def set_active(self, active: Iterable[tuple[str, str]], keep_s: float) -> None: ...

    async def release(self) -> None: ...

    async def close(self) -> None: ...


class FleetAlerts:
    """One worker's part in the fleet's alert rounds.

    Args:
        exchange: where the samples meet.
        interval_s: the rounds' interval; the lead lasts three of them, so a leader that stops
            is replaced within that.
    """

    def __init__(self, exchange: AlertExchange, interval_s: float) -> None:
        self.exchange = exchange
        self.lease_s = 3 * interval_s
        self._out = False

    async def evaluate(self, alerts: Alerts, now: float) -> list[Alert]:
        """Publish this worker's samples; if it leads, the alerts that started over the fleet's."""
        horizon = alerts.rules.horizon_s()
        keep_s = horizon + self.lease_s
        fresh = alerts.take()
        try:
            await self.exchange.publish(fresh, keep_s)
        except ConnectionError as exc:
            alerts.restore(fresh, now - horizon)  # not published: sent with the next round's
            self._outage(exc)
            return []
        try:
            if not await self.exchange.lead(self.lease_s):
                self._back()
                return []
            samples = await self.exchange.window(now - horizon)
            fired, active = Alerts.over(alerts.rules, samples, await self.exchange.active(), now)
            await self.exchange.set_active(active, keep_s)
        except ConnectionError as exc:
            self._outage(exc)  # published already: the next leader's round sees them
            return []
        self._back()
        return fired

    def _outage(self, exc: ConnectionError) -> None:
        if not self._out:
            log.warning("fleet alerts: %s; this worker's samples are kept and sent next round", exc)
        self._out = True

    def _back(self) -> None:
        if self._out:
            log.info("fleet alerts: Redis answers again")
            self._out = False

    async def close(self, alerts: Alerts) -> None:
        """Stopping: publish what this worker saw since its last round, give up the lead."""
        try:
            await self.exchange.publish(alerts.take(), alerts.rules.horizon_s() + self.lease_s)
        except ConnectionError:
            pass  # Redis is out of reach: these samples are lost with the process
        await self.exchange.release()
        await self.exchange.close()
