"""Alerts on the request stream: spend outliers, truncated answers, errors, slow answers.

``Alerts.observe`` takes each finished request's ledger row (a few fields into a deque, on the
request path); ``Alerts.evaluate`` runs every ``interval_s`` in the background over the recent
window and returns the alerts that *started* since the last evaluation. An alert fires once
per crossing: it fires when its condition becomes true and again only after the condition has
cleared. Delivery (``AlertTask``) is a log line at WARNING on ``breakwater.alerts`` and, when
configured, a JSON POST to a webhook; a webhook that fails is logged, never retried forever and
never in the way of a request.

The rules:

- ``spend_outlier``: a user whose spend in the window is more than ``factor`` times the median
  spend of the users who spent anything (at least 3 such users, and at least ``min_spend_usd``);
- ``length_share``: the share of answers stopped by ``finish_reason: length`` in the window is
  above ``threshold`` and higher than in the window before (rising);
- ``error_rate``: the share of requests answered with a 5xx or 429 is above ``threshold``;
- ``p95_latency``: the 95th-percentile total latency is above ``threshold_ms``;
- ``prompt_cache_drop``: per route, the share of input tokens read from the provider's prompt
  cache fell below ``drop`` times its share in the window before, which was at least
  ``min_baseline`` (the "a harmless template change tripled the bill" incident: a timestamp
  added at the start of a system prompt makes every prefix new).

Each rule needs ``min_requests`` in the window first, so a quiet hour does not page anyone.

With Redis configured, the rules see the whole fleet rather than one worker's share: each worker
hands its samples to ``observability/fleet_alerts.FleetAlerts`` instead of evaluating them, and
one leader evaluates everyone's (``Alerts.over``).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import aiohttp

from breakwater.engine.tasks import stop_task
from breakwater.observability.ledger.row import LedgerRow

if TYPE_CHECKING:
    from breakwater.observability.fleet_alerts import FleetAlerts

log = logging.getLogger("breakwater.alerts")

RECENT_ALERTS = 100
"""How many of the last alerts a process keeps in memory to show (``AlertTask.recent``, ``AlertOutbox.recent``)."""


@dataclass(frozen=True, slots=True)
class SpendOutlier:
    factor: float = 10.0
    window_s: float = 3600.0
    min_spend_usd: float = 0.10


@dataclass(frozen=True, slots=True)
class LengthShare:
    threshold: float = 0.2
    window_s: float = 900.0
    min_requests: int = 50


@dataclass(frozen=True, slots=True)
class ErrorRate:
    threshold: float = 0.05
    window_s: float = 300.0
    min_requests: int = 50


@dataclass(frozen=True, slots=True)
class P95Latency:
    threshold_ms: float = 10_000.0
    window_s: float = 300.0
    min_requests: int = 50


@dataclass(frozen=True, slots=True)
class PromptCacheDrop:
    drop: float = 0.5
    min_baseline: float = 0.2
    window_s: float = 900.0
    min_requests: int = 20


@dataclass(frozen=True, slots=True)
class AlertRules:
    spend_outlier: SpendOutlier | None = None
    length_share: LengthShare | None = None
    error_rate: ErrorRate | None = None
    p95_latency: P95Latency | None = None
    prompt_cache_drop: PromptCacheDrop | None = None

    def horizon_s(self) -> float:
        """How far back the rules look (the length rule compares two windows)."""
        spans = [0.0]
        if self.spend_outlier:
            spans.append(self.spend_outlier.window_s)
        if self.length_share:
            spans.append(2 * self.length_share.window_s)
        if self.error_rate:
            spans.append(self.error_rate.window_s)
        if self.p95_latency:
            spans.append(self.p95_latency.window_s)
        if self.prompt_cache_drop:
            spans.append(2 * self.prompt_cache_drop.window_s)
        return max(spans)


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    #: what the alert is about: a user for spend, else "all"
    subject: str
    message: str
    value: float
    threshold: float
    at: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": self.subject,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "at": self.at,
            **self.details,
        }


#: (ts, user, cost, status, finish_reason, latency_ms, route, input tokens, cached input tokens)
_Sample = tuple[float, str, float, int, str | None, float, str, int, int]


class Alerts:
    """The recent samples and which alerts are active."""

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        self._samples: deque[_Sample] = deque()
        self._active: set[tuple[str, str]] = set()

    def observe(self, row: LedgerRow) -> None:
        cost = float(row.cost_usd) if row.cost_usd is not None else 0.0
        self._samples.append(
            (
                row.ts, row.user, cost, row.status, row.finish_reason, row.latency_ms, row.route, row.input_tokens,
                row.cached_input_tokens,
            )
        )  # fmt: skip

    def take(self) -> list[_Sample]:
        """The samples observed since the last ``take``, removed (to be published for the fleet)."""
        taken = list(self._samples)
        self._samples.clear()
        return taken

    def restore(self, samples: list[_Sample], since: float) -> None:
        """Put back taken samples that could not be published, those from ``since`` on."""
        self._samples.extendleft(reversed([s for s in samples if s[0] >= since]))

    @classmethod
    def over(
        cls, rules: AlertRules, samples: Iterable[Sequence[Any]], active: set[tuple[str, str]], now: float
    ) -> tuple[list[Alert], set[tuple[str, str]]]:
        """``evaluate`` over samples gathered elsewhere (the fleet's), given which alerts were
        active: (the alerts that started, the alerts active now)."""
        view = cls(rules)
        view._samples.extend(sorted((cast(_Sample, tuple(s)) for s in samples), key=lambda s: s[0]))
        view._active = set(active)
        fired = view.evaluate(now)
        return fired, view._active

    def evaluate(self, now: float) -> list[Alert]:
        """The alerts whose condition holds now and did not at the last evaluation."""
        samples = self._samples
        cutoff = now - self.rules.horizon_s()
        while samples and samples[0][0] < cutoff:
            samples.popleft()
        holding = self._check(now)
        fired = [a for a in holding if (a.rule, a.subject) not in self._active]
        self._active = {(a.rule, a.subject) for a in holding}
        return fired

    def _window(self, now: float, window_s: float, end_ago: float = 0.0) -> list[_Sample]:
        start, end = now - window_s - end_ago, now - end_ago
        return [s for s in self._samples if start <= s[0] < end or (end_ago == 0 and s[0] >= end)]

    def _check(self, now: float) -> list[Alert]:
        out: list[Alert] = []
        r = self.rules
        if r.spend_outlier is not None:
            out.extend(self._spend(now, r.spend_outlier))
        if r.length_share is not None:
            rule = r.length_share
            current = self._window(now, rule.window_s)
            before = self._window(now, rule.window_s, end_ago=rule.window_s)
            if len(current) >= rule.min_requests:
                share = _share(current, lambda s: s[4] == "length")
                previous = _share(before, lambda s: s[4] == "length") if before else 0.0
                if share > rule.threshold and share > previous:
                    out.append(
                        Alert(
                            "length_share",
                            "all",
                            f"{share:.0%} of answers were cut by max_tokens (finish_reason length), "
                            f"up from {previous:.0%}",
                            share,
                            rule.threshold,
                            now,
                            {"previous": previous, "requests": len(current)},
                        )
                    )
        if r.error_rate is not None:
            rule_e = r.error_rate
            current = self._window(now, rule_e.window_s)
            if len(current) >= rule_e.min_requests:
                rate = _share(current, lambda s: s[3] >= 500 or s[3] == 429)
                if rate > rule_e.threshold:
                    out.append(
                        Alert(
                            "error_rate",
                            "all",
                            f"{rate:.1%} of requests failed (5xx or 429)",
                            rate,
                            rule_e.threshold,
                            now,
                            {"requests": len(current)},
                        )
                    )
        if r.p95_latency is not None:
            rule_l = r.p95_latency
            current = self._window(now, rule_l.window_s)
            if len(current) >= rule_l.min_requests:
                latencies = sorted(s[5] for s in current)
                p95 = latencies[max(0, -(-95 * len(latencies) // 100) - 1)]
                if p95 > rule_l.threshold_ms:
                    out.append(
                        Alert(
                            "p95_latency",
                            "all",
                            f"p95 latency {p95:.0f} ms",
                            p95,
                            rule_l.threshold_ms,
                            now,
                            {"requests": len(current)},
                        )
                    )
        if r.prompt_cache_drop is not None:
            out.extend(self._prompt_cache(now, r.prompt_cache_drop))
        return out

    def _prompt_cache(self, now: float, rule: PromptCacheDrop) -> list[Alert]:
        """Routes whose prompt-cache share of input tokens fell sharply against the window before."""
        shares: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0, 0], [0, 0, 0]])
        for window, ago in ((0, 0.0), (1, rule.window_s)):
            for s in self._window(now, rule.window_s, end_ago=ago):
                if s[7] > 0 and s[3] < 400:
                    tally = shares[s[6]][window]
                    tally[0] += 1
                    tally[1] += s[7]
                    tally[2] += s[8]
        out = []
        for route, (current, before) in sorted(shares.items()):
            if current[0] < rule.min_requests or before[0] < rule.min_requests:
                continue
            share, baseline = current[2] / current[1], before[2] / before[1]
            if baseline >= rule.min_baseline and share < rule.drop * baseline:
                out.append(
                    Alert(
                        "prompt_cache_drop",
                        route,
                        f"route {route!r}: {share:.0%} of input tokens came from the prompt cache, down from "
                        f"{baseline:.0%}; a prompt prefix that keeps changing (a timestamp or id early in the "
                        "system prompt) makes every request pay full price",
                        share,
                        rule.drop * baseline,
                        now,
                        {"previous": baseline, "requests": current[0]},
                    )
                )
        return out

    def _spend(self, now: float, rule: SpendOutlier) -> list[Alert]:
        spend: dict[str, float] = defaultdict(float)
        for s in self._window(now, rule.window_s):
            if s[1] and s[2] > 0:
                spend[s[1]] += s[2]
        if len(spend) < 3:
            return []
        median = statistics.median(spend.values())
        return [
            Alert(
                "spend_outlier",
                user,
                f"user {user!r} spent ${total:.2f} in {rule.window_s / 3600:g} h, {total / median:.0f}x the median "
                f"user (${median:.4f})",
                total,
                rule.factor * median,
                now,
                {"median_usd": median},
            )
            for user, total in sorted(spend.items())
            if total > rule.factor * median and total >= rule.min_spend_usd
        ]


def _share(samples: list[_Sample], hit: Callable[[_Sample], bool]) -> float:
    return sum(1 for s in samples if hit(s)) / len(samples) if samples else 0.0


Deliver = Callable[[Alert], Awaitable[None]]


class WebhookDelivery:
    """POSTs each alert as JSON to a URL (Slack-compatible: a ``text`` field carries the message)."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, alert: Alert) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        payload = {"text": f"[breakwater] {alert.message}", "alert": alert.to_json()}
        try:
            async with self._session.post(self._url, json=payload) as response:
                if response.status >= 400:
                    log.error("alert webhook answered %d for %s", response.status, alert.rule)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("alert webhook failed for %s: %s", alert.rule, type(exc).__name__)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AlertTask:
    """Evaluates the rules every ``interval_s`` and delivers what fired: log, then webhook.

    With ``fleet``, the rules are evaluated over every worker's samples by whichever worker leads
    (``observability/fleet_alerts.py``); this worker's own only go there.
    """

    def __init__(
        self,
        alerts: Alerts,
        interval_s: float,
        now: Callable[[], float],
        webhook: WebhookDelivery | None = None,
        fleet: FleetAlerts | None = None,
    ) -> None:
        self.alerts = alerts
        self._interval = interval_s
        self._now = now
        self._webhook = webhook
        self.fleet = fleet
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        #: the last alerts fired in this process, oldest first (the dashboard's limits page)
        self.recent: deque[Alert] = deque(maxlen=RECENT_ALERTS)

    async def run_once(self) -> list[Alert]:
        now = self._now()
        fired = self.alerts.evaluate(now) if self.fleet is None else await self.fleet.evaluate(self.alerts, now)
        for alert in fired:
            self.recent.append(alert)
            log.warning("alert %s: %s", alert.rule, alert.message, extra={"alert": alert.to_json()})
            if self._webhook is not None:
                await self._webhook(alert)
            self.delivered += 1
        return fired

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-alerts")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("alert evaluation failed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        if self.fleet is not None:
            await self.fleet.close(self.alerts)
        if self._webhook is not None:
            await self._webhook.close()


class AlertOutbox:
    """Alerts raised as they happen rather than by the periodic rules (budget crossings).

    ``push`` logs the alert at once (WARNING on ``breakwater.alerts``) and queues it for the
    webhook, which one background task posts in order; the request path only appends to a list.
    """

    def __init__(self, webhook: WebhookDelivery | None = None) -> None:
        self._webhook = webhook
        self._pending: deque[Alert] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        #: the last alerts pushed in this process, oldest first (the dashboard's limits page)
        self.recent: deque[Alert] = deque(maxlen=RECENT_ALERTS)

    def push(self, alert: Alert) -> None:
        self.recent.append(alert)
        log.warning("alert %s: %s", alert.rule, alert.message, extra={"alert": alert.to_json()})
        self.delivered += 1
        if self._webhook is not None:
            self._pending.append(alert)
            self._wake.set()

    def start(self) -> None:
        if self._task is None and self._webhook is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-alert-outbox")

    async def _run(self) -> None:
        assert self._webhook is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._webhook(self._pending.popleft())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        if self._webhook is not None:
            while self._pending:  # the last ones, bounded by the webhook's own timeout
                await self._webhook(self._pending.popleft())
