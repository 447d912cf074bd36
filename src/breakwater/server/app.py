"""The ASGI application: ``create_app(config)`` wires everything; a dict lookup routes requests.

Nothing happens at import time. ``app_from_env`` is the factory uvicorn's worker processes call
(``--workers N``): it reads the config path the CLI put in ``BREAKWATER_CONFIG``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import orjson
from pydantic import BaseModel

from breakwater.core.config import Config, ConfigError, Problem, parse_config
from breakwater.core.config_paths import anchor_paths
from breakwater.core.defaults import default_config
from breakwater.core.errors import MethodNotAllowed, NotFound
from breakwater.core.prices import PriceBook
from breakwater.core.pricing import Price
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.limits.checks import BudgetAlert
from breakwater.engine.ports import Clock, RandomSource
from breakwater.engine.routing import Deployment
from breakwater.infra.clock import SystemClock, SystemRandom
from breakwater.infra.credentials import CredentialError, resolve
from breakwater.infra.http import AiohttpSender
from breakwater.infra.tokenizers import Tokenizers
from breakwater.observability.alerts import (
    Alert,
    AlertOutbox,
    AlertRules,
    Alerts,
    AlertTask,
    ErrorRate,
    LengthShare,
    P95Latency,
    SpendOutlier,
    WebhookDelivery,
)
from breakwater.observability.capture import Capture, CapturePolicy
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.ledger.service import Ledger, store_for
from breakwater.observability.logging import redactor
from breakwater.observability.metrics import Metrics
from breakwater.observability.recorder import Recorder
from breakwater.providers import anthropic_serve, openai_serve
from breakwater.server import errors
from breakwater.server.access import AccessLayer
from breakwater.server.admin import Admin, AdminAuth
from breakwater.server.admin_access import AdminAccess
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, send_bytes
from breakwater.server.budget_seed import seed_budgets
from breakwater.server.disconnect import CancelOnDisconnect, DisconnectWatch
from breakwater.server.drain import Drain
from breakwater.server.endpoints import ChatCodec, Endpoints
from breakwater.server.wiring import Wiring, check_environment

if TYPE_CHECKING:  # opentelemetry is imported only when tracing is on (``_tracer``)
    from breakwater.observability.tracing import Tracer

log = logging.getLogger("breakwater.server")

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

OPENAI = ChatCodec(
    "openai",
    openai_serve.decode_chat_request,
    openai_serve.encode_chat_response,
    openai_serve.StreamEncoder,
    errors.openai_error,
)
ANTHROPIC = ChatCodec(
    "anthropic",
    anthropic_serve.decode_chat_request,
    anthropic_serve.encode_chat_response,
    anthropic_serve.StreamEncoder,
    errors.anthropic_error,
)


class BreakwaterApp:
    """The gateway as an ASGI 3 application."""

    def __init__(
        self,
        config: Config,
        *,
        environ: Mapping[str, str],
        clock: Clock | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        self.config = config
        self.sender = AiohttpSender()
        clock = clock or SystemClock()
        rng = rng or SystemRandom()
        wiring = Wiring(config, environ, self.sender, clock, rng)
        redactor.add(wiring.secrets())  # no log line of this process shows them
        self.tokenizers = Tokenizers()
        self.gateway = Gateway(
            wiring.router(), clock, rng, on_breaker_transition=_log_transition, tokens=self.tokenizers
        )
        self.ready = False
        #: set at once by the first SIGTERM (``/readyz`` answers 503 "draining"); see server/drain.py
        self.draining = False
        self.drain = Drain(config.server.drain_delay_s, self._start_draining)
        self.ledger = _ledger(config, environ, clock)
        self.prices = PriceBook(wiring.price_overrides())
        #: deployments with no known price, said once at start-up (not at each request)
        self._unpriced = wiring.unpriced(self.prices)
        #: budget alerts (and any alert raised as it happens): logged, and posted to the webhook
        self.outbox = AlertOutbox(_webhook(config, environ))
        prices = self.prices

        def price_of(d: Deployment) -> Price | None:
            return prices.known(d.name, wiring.price_host(d.target.provider), d.target.model)

        self.access = AccessLayer(
            config,
            environ,
            clock,
            self.gateway.router,
            tokens=self.tokenizers,
            price_of=price_of,
            on_alert=lambda alert: self.outbox.push(_budget_alert(alert)),
        )
        redactor.add(self.access.secrets())
        self.metrics = Metrics(
            self.gateway,
            config.routes,
            config.deployments,
            None if self.ledger is None else self.ledger.writer,
            environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
            quota=self.access.quota,
            directory=self.access.directory,
        )
        #: None unless ``tracing.enabled``; tests add an in-memory span processor to it
        self.tracer = _tracer(config, environ)
        #: None unless some alert rule is configured
        self.alerts = _alerts(config, environ, clock)
        recorder = Recorder(
            _sink(
                self.metrics.requests.observe,
                None if self.ledger is None else self.ledger.submit,
                None if self.alerts is None else self.alerts.alerts.observe,
            ),
            self.prices,
            wiring.price_host,
            self.tokenizers,
            self.tracer,
        )
        policies = {
            name: CapturePolicy(route.capture.sample_rate, route.capture.max_chars)
            for name, route in config.routes.items()
            if route.capture.enabled
        }
        if policies:
            recorder.capture = Capture(policies, rng.random)
        ep = Endpoints(self.gateway, config.server.max_body_bytes, recorder, self.access.gate)

        async def chat(scope: Scope, receive: Receive, send: Send) -> None:
            await ep.chat(OPENAI, scope, receive, send)

        async def messages(scope: Scope, receive: Receive, send: Send) -> None:
            await ep.chat(ANTHROPIC, scope, receive, send)

        # the routes that call upstream: a client that disconnects cancels the call at once
        self.disconnects = DisconnectWatch()
        guarded_chat = CancelOnDisconnect(chat, ep.ids, OPENAI.error, self.disconnects)
        guarded_embeddings = CancelOnDisconnect(ep.embeddings, ep.ids, errors.openai_error, self.disconnects)
        self._routes: dict[tuple[str, str], Handler] = {}
        for prefix in ("/v1", ""):  # clients configured with or without /v1 in their base URL
            self._routes[("POST", f"{prefix}/chat/completions")] = guarded_chat
            self._routes[("POST", f"{prefix}/embeddings")] = guarded_embeddings
            self._routes[("GET", f"{prefix}/models")] = ep.models
        self._routes[("POST", "/v1/messages")] = CancelOnDisconnect(messages, ep.ids, ANTHROPIC.error, self.disconnects)
        auth = AdminAuth(resolve(config.server.admin_key, environ), open_without_key=not config.access.enabled)
        admin = Admin(self.gateway, auth, self.metrics)
        self._admin_access = AdminAccess(auth, self.access.admin, self.access.quota, clock.time)
        self._routes[("GET", "/admin/deployments")] = admin.deployments
        self._routes[("GET", "/admin/usage")] = admin.usage(None if self.ledger is None else self.ledger.store)
        self._routes[("GET", "/metrics")] = admin.metrics
        self._routes[("GET", "/healthz")] = self._healthz
        self._routes[("GET", "/readyz")] = self._readyz
        self._endpoints = ep
        #: path -> the methods it takes, for a 405's Allow header
        self._methods: dict[str, list[str]] = {}
        for method, path in self._routes:
            self._methods.setdefault(path, []).append(method)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            handler = self._routes.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(scope, receive, send)
            else:
                await self._unrouted(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _unrouted(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if self._admin_access.handles(path):
            await self._admin_access(scope, receive, send)
            return
        allow = self._methods.get(path)
        for prefix in ("/v1/models/", "/models/"):
            if path.startswith(prefix) and len(path) > len(prefix):
                if scope["method"] == "GET":
                    await self._endpoints.model(path[len(prefix) :], scope, receive, send)
                    return
                allow = ["GET"]
        mapper = errors.anthropic_error if path.startswith("/v1/messages") else errors.openai_error
        if allow is not None:
            exc: NotFound | MethodNotAllowed = MethodNotAllowed(
                f"Method {scope['method']} is not allowed on {path}; use {' or '.join(sorted(allow))}", allow
            )
        else:
            exc = NotFound(f"Unknown path {path}; see GET /v1/models and POST /v1/chat/completions")
        status, headers, body = mapper(exc, self._endpoints.ids.of(scope))
        await send_bytes(send, status, body, headers)

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, b'{"status":"ok"}', JSON_HEADERS)

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        ready = self.ready and self.access.ready
        status = "draining" if self.draining else "ready" if ready else "not ready"
        body = {"status": status, "routes": self.gateway.router.public_names(), **self.access.readiness()}
        await send_bytes(send, 200 if status == "ready" else 503, orjson.dumps(body), JSON_HEADERS)

    def _start_draining(self) -> None:
        self.draining = True
        self.ready = False

    async def startup(self) -> None:
        for warning in self._unpriced:
            log.warning(warning)
        await self.sender.start()
        # the tokenizers' rank files (a few MB, ~0.3 s) are read before the first request, off the loop
        await asyncio.to_thread(self.tokenizers.warm)
        # Everything alive now (modules, config, routes) lives as long as the process: move it
        # out of the collector's reach so full collections only walk per-request garbage.
        gc.collect()
        gc.freeze()
        self.drain.install()
        self.disconnects.start()
        if self.ledger is not None:
            await self.ledger.start()
        if self.alerts is not None:
            self.alerts.start()
        self.outbox.start()
        await self.access.start()
        await self._seed_budgets()
        self.ready = True

    async def _seed_budgets(self) -> None:
        """Memory counters start empty: give each budget the spend the ledger already holds."""
        directory, ledger = self.access.directory, self.ledger
        if self.access.backend != "memory" or directory is None or ledger is None or not directory.loaded:
            return
        try:
            await seed_budgets(self.access.quota, directory.snapshot(), ledger.store, self.gateway.clock.time())
        except Exception as exc:  # noqa: BLE001 - a ledger that cannot be read must not stop the start-up
            log.warning(
                "could not read this period's spend from the ledger (%s): budgets start from 0", type(exc).__name__
            )

    async def shutdown(self) -> None:
        self.ready = False
        self.drain.uninstall()
        await self.disconnects.stop()
        await self.sender.close()
        await self.access.stop()  # after the last request: its settlement applied
        await self.outbox.stop()
        if self.ledger is not None:
            await self.ledger.stop()  # after the last request: every row flushed, or spooled
        if self.alerts is not None:
            await self.alerts.stop()
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.shutdown)  # the last spans exported (bounded by its timeout)
        self.metrics.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def ledger_url(config: Config, environ: Mapping[str, str]) -> str:
    """The ledger's database URL, its ``env:`` / ``file:`` reference resolved.

    Raises:
        CredentialError: the reference names nothing.
    """
    url = config.ledger.url
    return (resolve(url, environ) or "") if url.startswith(("env:", "file:")) else url


def _ledger(config: Config, environ: Mapping[str, str], clock: Clock) -> Ledger | None:
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


def _tracer(config: Config, environ: Mapping[str, str]) -> Tracer | None:
    settings = config.tracing
    if not settings.enabled:
        return None
    headers: dict[str, str] = {}
    problems: list[Problem] = []
    for name, value in settings.headers.items():
        try:
            headers[name] = (resolve(value, environ) or "") if value.startswith(("env:", "file:")) else value
        except CredentialError as exc:
            problems.append(Problem(f"tracing.headers.{name}", str(exc)))
    if problems:
        raise ConfigError("<config>", problems)
    from breakwater.observability.tracing import Tracer, exporter_processor, provider_systems

    return Tracer(settings, provider_systems(config.providers), exporter_processor(settings, headers))


def _sink(*consumers: Callable[[LedgerRow], None] | None) -> Callable[[LedgerRow], None]:
    """Each finished request's row goes to every consumer given (metrics, ledger, alerts)."""
    live = [c for c in consumers if c is not None]
    if len(live) == 1:
        return live[0]

    def each(row: LedgerRow) -> None:
        for consume in live:
            consume(row)

    return each


Rule = TypeVar("Rule")


def _alerts(config: Config, environ: Mapping[str, str], clock: Clock) -> AlertTask | None:
    settings = config.alerts
    rules = AlertRules(
        spend_outlier=_rule(SpendOutlier, settings.spend_outlier),
        length_share=_rule(LengthShare, settings.length_share),
        error_rate=_rule(ErrorRate, settings.error_rate),
        p95_latency=_rule(P95Latency, settings.p95_latency),
    )
    if rules.horizon_s() == 0:
        return None
    return AlertTask(Alerts(rules), settings.interval_s, clock.time, _webhook(config, environ))


def _webhook(config: Config, environ: Mapping[str, str]) -> WebhookDelivery | None:
    """Where alerts are posted (``alerts.webhook``), if anywhere."""
    webhook = config.alerts.webhook
    if webhook is not None and webhook.startswith(("env:", "file:")):
        webhook = resolve(webhook, environ)
    return WebhookDelivery(webhook) if webhook else None


def _budget_alert(alert: BudgetAlert) -> Alert:
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


def _log_transition(deployment: str, old: str, new: str) -> None:
    level = logging.WARNING if new == "open" else logging.INFO
    log.log(level, "circuit breaker %s: %s -> %s", deployment, old, new, extra={"deployment": deployment})


def create_app(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    rng: RandomSource | None = None,
) -> BreakwaterApp:
    """Build the gateway for ``config``.

    Args:
        config: a validated config (``parse_config`` or ``default_config``).
        environ: where ``env:`` credential references are read (default ``os.environ``).
        clock: time source for policies (tests inject a fake).
        rng: random source for weighted routing and the mock's fault rates.

    Raises:
        ConfigError: credentials that do not resolve, unknown hosts, bad fault rules.
    """
    env = os.environ if environ is None else environ
    problems = check_environment(config, env)
    if problems:
        raise ConfigError("<config>", problems)
    return BreakwaterApp(config, environ=env, clock=clock, rng=rng)


def load_config(path: str | None, environ: Mapping[str, str]) -> Config:
    """The config at ``path``, or the embedded default when ``path`` is None.

    Relative paths in the file (SQLite stores, the spool, ``file:`` references) are made relative
    to the file's directory (``core/config_paths.py``); the embedded default's stay relative to
    the current directory.
    """
    if path is None:
        return default_config(environ)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [Problem("", f"cannot read the file: {exc.strerror}")]) from None
    return anchor_paths(parse_config(text, path), Path(path).absolute().parent)


def app_from_env() -> BreakwaterApp:
    """Factory for uvicorn workers: config from ``BREAKWATER_CONFIG`` (unset: embedded default)."""
    return create_app(load_config(os.environ.get("BREAKWATER_CONFIG") or None, os.environ))
