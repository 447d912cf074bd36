"""The observers a configuration asks for, built from it: ledger, tracer, alert rules (fleet-wide
through Redis when it is configured), webhook.

Each builder returns ``None`` when its section is off. References (``env:`` / ``file:``) are
resolved here, so the objects built never see one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from breakwater.core.config import Config, ConfigError, Problem
from breakwater.engine.limits.checks import BudgetAlert
from breakwater.engine.ports import Clock
from breakwater.infra.credentials import CredentialError, is_reference, resolve, resolve_optional
from breakwater.observability.alerts import (
    Alert,
    AlertRules,
    Alerts,
    AlertTask,
    ErrorRate,
    LengthShare,
    P95Latency,
    PromptCacheDrop,
    SpendOutlier,
    WebhookDelivery,
)
from breakwater.observability.fleet_alerts import FleetAlerts
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.ledger.service import Ledger, store_for
from breakwater.observability.slo import objectives
from breakwater.observability.slo_alerts import SloMonitor, SloTask

if TYPE_CHECKING:  # opentelemetry is imported only when tracing is on (``build_tracer``)
    from breakwater.observability.tracing import Tracer

log = logging.getLogger("breakwater.server")


def ledger_url(config: Config, environ: Mapping[str, str]) -> str:
    """The ledger's database URL, its ``env:`` / ``file:`` reference resolved.

    Raises:
        CredentialError: the reference names nothing.
    """
    url = config.ledger.url
    return resolve_optional(url, environ)


def build_ledger(config: Config, environ: Mapping[str, str], clock: Clock) -> Ledger | None:
    settings = config.ledger
    if not settings.enabled:
        return None
    url = ledger_url(config, environ)
    retention = None if settings.retention_days is None else settings.retention_days * 86400
    return Ledger(
        store_for(url),
        settings.spool_path,
        batch_size=settings.batch_size,
        flush_interval_s=settings.flush_interval_s,
        retention_s=retention,
        clock=clock,
    )


def build_slo(
    config: Config,
    environ: Mapping[str, str],
    ledger: Ledger | None,
    clock: Clock,
    alert: Callable[[Alert], None],
    previous: SloTask | None,
) -> SloTask | None:
    """The routes' SLOs measured from the ledger in the background (``None``: no route has an
    ``slo``, or the ledger is off); the burn alerts active under ``previous`` stay active. With
    Redis, the fleet's processes alert through one leader."""
    measured = objectives(config.routes)
    if not measured or ledger is None:
        return None
    active = None if previous is None else previous.monitor.active
    fleet = None
    if config.redis is not None:
        from breakwater.infra.alert_exchange import RedisAlertExchange  # redis-py only for a gateway that uses it

        r = config.redis
        fleet = RedisAlertExchange(
            resolve_optional(r.url, environ),
            namespace=f"{r.namespace}slo:",
            timeout_s=max(1.0, 10 * r.timeout_ms / 1000),
        )
    return SloTask(SloMonitor(ledger.store, measured, clock.time, alert, active, fleet))


def build_tracer(config: Config, environ: Mapping[str, str]) -> Tracer | None:
    settings = config.tracing
    if not settings.enabled:
        return None
    headers: dict[str, str] = {}
    problems: list[Problem] = []
    for name, value in settings.headers.items():
        try:
            headers[name] = resolve_optional(value, environ)
        except CredentialError as exc:
            problems.append(Problem(f"tracing.headers.{name}", str(exc)))
    if problems:
        raise ConfigError("<config>", problems)
    from breakwater.observability.tracing import Tracer, exporter_processor, provider_systems

    return Tracer(settings, provider_systems(config.providers), exporter_processor(settings, headers))


def fan_out(*consumers: Callable[[LedgerRow], None] | None) -> Callable[[LedgerRow], None]:
    """Each finished request's row goes to every consumer given (metrics, ledger, alerts)."""
    live = [c for c in consumers if c is not None]
    if len(live) == 1:
        return live[0]

    def each(row: LedgerRow) -> None:
        for consume in live:
            consume(row)

    return each


Rule = TypeVar("Rule")


def build_alerts(config: Config, environ: Mapping[str, str], clock: Clock) -> AlertTask | None:
    settings = config.alerts
    rules = AlertRules(
        spend_outlier=_rule(SpendOutlier, settings.spend_outlier),
        length_share=_rule(LengthShare, settings.length_share),
        error_rate=_rule(ErrorRate, settings.error_rate),
        p95_latency=_rule(P95Latency, settings.p95_latency),
        prompt_cache_drop=_rule(PromptCacheDrop, settings.prompt_cache_drop),
    )
    if rules.horizon_s() == 0:
        return None
    return AlertTask(
        Alerts(rules), settings.interval_s, clock.time, build_webhook(config, environ), build_fleet(config, environ)
    )


def build_fleet(config: Config, environ: Mapping[str, str]) -> FleetAlerts | None:
    """With Redis, the traffic alerts evaluated over every worker's and replica's samples."""
    if config.redis is None:
        return None
    from breakwater.infra.alert_exchange import RedisAlertExchange  # redis-py only for a gateway that uses it

    r = config.redis
    # a round runs in the background: it may wait longer than a request would for Redis
    exchange = RedisAlertExchange(
        resolve_optional(r.url, environ), namespace=r.namespace, timeout_s=max(1.0, 10 * r.timeout_ms / 1000)
    )
    return FleetAlerts(exchange, config.alerts.interval_s)


def build_webhook(config: Config, environ: Mapping[str, str]) -> WebhookDelivery | None:
    """Where alerts are posted (``alerts.webhook``), if anywhere."""
    webhook = config.alerts.webhook
    if webhook is not None and is_reference(webhook):
        webhook = resolve(webhook, environ)
    return WebhookDelivery(webhook) if webhook else None


def budget_alert(alert: BudgetAlert) -> Alert:
    return Alert(
        "budget",
        f"{alert.scope}:{alert.subject}",
        alert.message(),
        float(alert.spent_usd),
        float(alert.budget_usd) * alert.share,
        alert.at,
        {
            "share": alert.share,
            "budget_usd": str(alert.budget_usd),
            "spent_usd": str(alert.spent_usd),
            "period": alert.period,
            "period_id": alert.period_id,
        },
    )


def _rule(kind: Callable[..., Rule], settings: BaseModel | None) -> Rule | None:
    return None if settings is None else kind(**settings.model_dump())


def log_transition(deployment: str, old: str, new: str) -> None:
    level = logging.WARNING if new == "open" else logging.INFO
    log.log(level, "circuit breaker %s: %s -> %s", deployment, old, new, extra={"deployment": deployment})
