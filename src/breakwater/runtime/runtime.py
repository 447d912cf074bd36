"""One running configuration: everything a validated config needs to serve, built from it.

``Runtime`` is built from a config and a process (``process.Process``: what outlives every
configuration a process runs): routes, the gateway, prices, the access layer, the ledger,
the tracer, alert rules and the webhook outbox, the recorder and the request pipeline.

Built from a *previous* runtime (a reload), a runtime takes over what did not change instead
of building it again:

- per-deployment state (breakers, statistics, limiters, retry budgets) of every deployment
  whose settings and provider are unchanged;
- the access layer (keys, counters with their windows, the quota) when ``access``, ``limits``
  and ``redis`` are unchanged; the ledger when ``ledger`` is; the tracer when ``tracing`` and
  the providers are; the alert rules and their webhook when ``alerts`` and ``redis`` (where the
  fleet's alert samples meet) are.

What it took over passes to it only at ``commit`` (the swap); a runtime stops only what it owns.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING

from breakwater.core.config import Config
from breakwater.core.prices import PriceBook
from breakwater.core.pricing import Price
from breakwater.engine.access.gatekeeper import Gatekeeper
from breakwater.engine.access.stage import AccessStage
from breakwater.engine.batches.store import BatchStore
from breakwater.engine.cache.stage import CacheStage
from breakwater.engine.cache.store import CacheStore
from breakwater.engine.calls.deployments import Deployments
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.drift.stage import DriftStage
from breakwater.engine.guardrails.dlp_stage import DlpStage
from breakwater.engine.guardrails.output_stage import OutputChecksStage
from breakwater.engine.pipeline import Pipeline, Stage
from breakwater.engine.prompts.stage import PromptsStage
from breakwater.engine.refusals.stage import RefusalsStage
from breakwater.engine.responses.store import ResponseStore
from breakwater.engine.router.stage import RouterStage
from breakwater.engine.routing import Deployment
from breakwater.engine.variants.stage import VariantsStage
from breakwater.observability.alerts import AlertOutbox, AlertTask
from breakwater.observability.capture import Capture, CapturePolicy
from breakwater.observability.ledger.service import Ledger
from breakwater.observability.logging import hide_secrets
from breakwater.observability.metrics import Metrics
from breakwater.observability.recorder import Recorder
from breakwater.observability.recording import RecordingStage
from breakwater.observability.retirement_metrics import RetirementCollector
from breakwater.observability.slo_alerts import SloTask
from breakwater.runtime.access import AccessLayer
from breakwater.runtime.batching import build_batch_store
from breakwater.runtime.branching import TRAINING_COUNT, build_plans, load_learned, local_embedder
from breakwater.runtime.budget_seed import seed_budgets
from breakwater.runtime.caching import (
    build_cache_store,
    build_embedder,
    build_semantic_feed,
    build_semantic_index,
    embedder_identity,
    load_embedder,
    semantic,
)
from breakwater.runtime.drifting import build_drift
from breakwater.runtime.injection import build_injection
from breakwater.runtime.observers import (
    build_alerts,
    build_ledger,
    build_slo,
    build_tracer,
    build_webhook,
    fan_out,
    log_transition,
)
from breakwater.runtime.responding import build_response_store
from breakwater.runtime.shadowing import build_shadow
from breakwater.runtime.trimming import build_trim
from breakwater.runtime.variants import build_refusal_detector, build_variant_plans
from breakwater.runtime.wiring import Wiring, retirements

if TYPE_CHECKING:  # numpy only with a semantic route; opentelemetry only when tracing is on
    from breakwater.engine.cache.semantic import Embedder, SemanticIndex
    from breakwater.infra.cache.semantic_feed import RedisSemanticFeed
    from breakwater.observability.tracing import Tracer
    from breakwater.runtime.process import Process

log = logging.getLogger("breakwater.server")

#: the config sections each long-lived service is built from: unchanged, a reload keeps it
SECTIONS: dict[str, tuple[str, ...]] = {
    "access": ("access", "limits", "redis"),
    "ledger": ("ledger",),
    "tracer": ("tracing", "providers"),
    "alerts": ("alerts", "redis"),
    "cache": ("cache", "redis"),
    "responses": ("responses", "access"),
    "batches": ("batches", "access"),
}


class Runtime:
    """Everything one configuration serves with. See the module docstring."""

    gateway: Gateway
    ledger: Ledger | None
    cache_store: CacheStore | None
    alerts: AlertTask | None
    outbox: AlertOutbox
    tracer: Tracer | None
    access: AccessLayer
    drift: DriftStage | None
    #: the routes' SLOs measured from the ledger (``None``: no route has one, or no ledger)
    slo: SloTask | None
    #: stored responses of ``POST /v1/responses`` (``previous_response_id``)
    responses: ResponseStore
    #: batch files, batches and their lines' results (``/v1/files``, ``/v1/batches``)
    batches: BatchStore

    def __init__(
        self, config: Config, process: Process, previous: Runtime | None = None, *, version: int | None = None
    ) -> None:
        self.config = config
        self.process = process
        #: the stored configuration version this runs (``None``: a file or the embedded default)
        self.version = version
        #: identifies the configuration (``/readyz``): the hash of its validated content
        self.config_hash = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
        env, clock, rng = process.environ, process.clock, process.rng
        wiring = Wiring(config, env, process.sender, clock, rng)
        hide_secrets(wiring.secrets())  # no log line of this process shows them (observability/logging.py)
        self.router = router = wiring.router()
        #: the Vertex providers' access tokens, refreshed in the background while this runtime runs
        self.access_tokens = list(wiring.access_tokens.values())
        #: the Bedrock providers' credential sources: resolved at start, refreshed until stop
        self.aws_credentials = [aws.source for aws in wiring.aws.values()]
        state = Deployments(clock, log_transition)
        if previous is not None:
            state.carry_over(previous.gateway.state, unchanged_deployments(previous.config, config))
        self.gateway = Gateway(router, clock, rng, tokens=process.tokenizers, state=state)
        self.prices = prices = PriceBook(wiring.price_overrides())
        #: deployments with no known price, said when the runtime starts (not at each request)
        self.unpriced = wiring.unpriced(prices)
        #: deployments whose model retires (a ``retires`` date or the price list's mark): warned
        #: about when the runtime starts, and in /metrics
        self.retirements = retirements(config)
        #: the services taken over from ``previous`` (by ``SECTIONS`` name)
        self.kept = [
            name
            for name, sections in SECTIONS.items()
            if previous is not None and all(getattr(previous.config, s) == getattr(config, s) for s in sections)
        ]
        identity = embedder_identity(config, router) if semantic(config) else ""
        old_index = None if previous is None else previous.semantic
        if "cache" in self.kept and old_index is not None and old_index.identity != identity:
            self.kept.remove("cache")  # other vectors: a new index (and store)
        self._owned = set(SECTIONS) - set(self.kept)
        self._previous = previous

        if previous is not None and "ledger" in self.kept:
            self.ledger = previous.ledger
        else:
            self.ledger = build_ledger(config, env, clock)
        if previous is not None and "alerts" in self.kept:
            self.alerts, self.outbox = previous.alerts, previous.outbox
        else:
            self.alerts = build_alerts(config, env, clock)
            #: budget alerts (and any alert raised as it happens): logged, and posted to the webhook
            self.outbox = AlertOutbox(build_webhook(config, env))
        if previous is not None and "tracer" in self.kept:
            self.tracer = previous.tracer
        else:
            self.tracer = build_tracer(config, env)
        if previous is not None and "cache" in self.kept and previous.cache_store is not None:
            self.cache_store = previous.cache_store
        else:
            self.cache_store = build_cache_store(config, env, clock)
        if previous is not None and "cache" in self.kept and previous.semantic is not None and semantic(config):
            self.semantic: SemanticIndex | None = previous.semantic
            self.semantic_feed: RedisSemanticFeed | None = previous.semantic_feed
        else:
            self.semantic = build_semantic_index(config, identity)
            self.semantic_feed = build_semantic_feed(config, env, self.semantic)
        if previous is not None and "access" in self.kept:
            self.access = previous.access
        else:
            self.access = AccessLayer(config, env, clock, on_alert=process.budget_alert)
        hide_secrets(self.access.secrets())
        if previous is not None and "responses" in self.kept:
            self.responses = previous.responses
        else:
            self.responses = build_response_store(config, env)
        if previous is not None and "batches" in self.kept:
            self.batches = previous.batches
        else:
            self.batches = build_batch_store(config, env)

        def price_of(d: Deployment) -> Price | None:
            return prices.known(d.name, wiring.price_host(d.target.provider), d.target.model)

        gate = Gatekeeper(
            router, self.access.quota, self.access.directory, tokens=process.tokenizers, price_of=price_of
        )
        if process.metrics is None:
            process.metrics = Metrics(config.routes, config.deployments, env.get("PROMETHEUS_MULTIPROC_DIR") or None)
        self.metrics = process.metrics
        recorder = Recorder(
            fan_out(
                self.metrics.requests.observe,
                None if self.ledger is None else self.ledger.submit,
                None if self.alerts is None else self.alerts.alerts.observe,
            ),
            prices,
            wiring.price_host,
            process.tokenizers,
            self.tracer,
        )
        policies = {
            name: CapturePolicy(route.capture.sample_rate, route.capture.max_chars)
            for name, route in config.routes.items()
            if route.capture.enabled
        }
        if policies:
            recorder.capture = Capture(policies, rng.random)
        #: the access checks (batch lines are identified by their owner's key id through it)
        self.gate = gate
        stages: dict[str, Stage] = {"access": AccessStage(gate), "recording": RecordingStage(recorder, clock)}
        #: the cache stage, when some route caches
        self.cache: CacheStage | None = None
        #: what embeds semantic routes' questions (``None`` when no route is semantic)
        self.embedder: Embedder | None = build_embedder(
            config, self.gateway, clock, stages["recording"].end, None if previous is None else previous.embedder
        )
        #: what embeds prompts for learned routers: the local model (the cache's, when it is local too)
        self.router_embedder: Embedder | None = local_embedder(
            config, self.embedder, None if previous is None else previous.router_embedder
        )
        tokenizers = process.tokenizers
        learned = load_learned(config, self.router_embedder, lambda text: tokenizers.count(*TRAINING_COUNT, text))
        plans = build_plans(config, clock, learned)
        #: the router stage, when some route has branches
        self.router_stage: RouterStage | None = None
        if plans:
            stages["router"] = self.router_stage = RouterStage(plans, clock)
        #: the prompts stage, when the config has prompts (compiled here, once per config)
        self.prompts = PromptsStage.of(config)
        if self.prompts is not None:
            stages["prompts"] = self.prompts
        variant_plans = build_variant_plans(config)
        if variant_plans:
            stages["variants"] = VariantsStage(variant_plans)
        injection = build_injection(config)
        if injection is not None:
            stages["injection"] = injection
        dlp_routes = {name: route.dlp for name, route in config.routes.items() if route.dlp is not None}
        dlp_providers = {name: p.dlp for name, p in config.providers.items() if p.dlp is not None}
        if dlp_routes or dlp_providers:
            stages["dlp"] = DlpStage(dlp_routes, dlp_providers)
        detector = build_refusal_detector(config)
        if detector is not None:
            stages["refusals"] = RefusalsStage(detector)
        #: the output checks, when some route has any (its canaries drawn here, once per config)
        self.output_checks = OutputChecksStage.of(config, rng)
        if self.output_checks is not None:
            stages["output_checks"] = self.output_checks
        if self.cache_store is not None:
            stages["cache"] = self.cache = CacheStage(router, self.cache_store, clock, self.semantic, self.embedder)
        #: the shadow stage, when some route mirrors traffic to a candidate
        self.shadow = build_shadow(config, self.gateway, clock, rng, stages["recording"].end, self.embedder)
        if self.shadow is not None:
            stages["shadow"] = self.shadow
        #: the drift stage, when some route's answers are graded (its watches kept over a reload)
        self.drift = build_drift(
            config,
            self.gateway,
            clock,
            rng,
            stages["recording"].end,
            embedder=self.embedder,
            store=None if self.ledger is None else self.ledger.store,
            alert=self.outbox.push,
            previous=None if previous is None else previous.drift,
        )
        if self.drift is not None:
            stages["drift"] = self.drift
        self.slo = build_slo(
            config, env, self.ledger, clock, self.outbox.push, None if previous is None else previous.slo
        )
        if self.slo is not None:  # a fast burn sheds optional work first (docs/slo.md)
            for optional in (self.shadow, self.drift):
                if optional is not None:
                    optional.shed = self.slo.monitor.burning
        #: the history trimmer, when some route trims
        self.trim = build_trim(config, router, process.tokenizers)
        if self.trim is not None:
            stages["trim"] = self.trim
        self.pipeline = Pipeline(stages, self.gateway)
        #: requests being served by this runtime (the server counts them in and out); a retired
        #: runtime stops when it reaches 0
        self.active = 0
        self.retired = False
        self._idle = asyncio.Event()

    # --- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start what this runtime owns (a first start also seeds the budgets from the ledger)."""
        for warning in self.unpriced:
            log.warning(warning)
        for retirement in self.retirements:
            retiring = retirement.warning(self.process.clock.time())
            if retiring is not None:
                log.warning(retiring, extra={"deployment": retirement.deployment})
        for tokens in self.access_tokens:
            tokens.start()  # the first tokens are fetched now, not by the first requests
        for source in self.aws_credentials:
            await source.start()  # the chain is looked up in a thread, never on a request
        owned = self._owned
        for embedder in (self.embedder, self.router_embedder):
            if embedder is not None:
                await load_embedder(embedder)  # once: a kept local model is loaded already
        if self.router_embedder is not None:
            await self.process.tokenizers.load(*TRAINING_COUNT)  # learned routers count tokens as trained
        for provider, model in () if self.trim is None else self.trim.counted:
            await self.process.tokenizers.load(provider, model)  # trimmed routes count exactly from the start
        if "cache" in owned and self.semantic_feed is not None:
            self.semantic_feed.start()
        if "ledger" in owned and self.ledger is not None:
            await self.ledger.start()
        if "alerts" in owned:
            if self.alerts is not None:
                self.alerts.start()
            self.outbox.start()
        if self.slo is not None:
            self.slo.start()
        if "access" in owned:
            await self.access.start()
            await self._seed_budgets()
        if "responses" in owned:
            await self._open_responses()
        if "batches" in owned:
            await self._open_batches()

    def commit(self) -> None:
        """This runtime serves from now on: what it took over is its own, and metrics read it."""
        previous, self._previous = self._previous, None
        if previous is not None:
            # what was taken over is this runtime's to stop from now on, no longer the old one's
            previous._owned -= set(self.kept)
            self._owned |= set(self.kept)
        if self.access.admin is not None:
            self.access.admin.set_routes(list(self.config.routes))
        self.metrics.bind(
            self.gateway,
            None if self.ledger is None else self.ledger.writer,
            quota=self.access.quota,
            directory=self.access.directory,
            cache=self.cache,
            router=self.router_stage,
            shadow=self.shadow,
            drift=self.drift,
            slo=None if self.slo is None else self.slo.monitor,
            prompts=self.prompts,
            routes=self.config.routes,
            deployments=self.config.deployments,
            config=(self.version, self.config_hash),
            tokens=self.access_tokens,
            retirements=RetirementCollector(self.retirements, self.process.clock) if self.retirements else None,
        )
        self.process.current = self

    async def stop(self) -> None:
        """Stop what this runtime owns; the ledger last but the tracer, so every row is flushed or spooled."""
        owned = self._owned
        if self.shadow is not None:
            await self.shadow.stop()  # first: a candidate call cut short still leaves its ledger row
        if self.drift is not None:
            await self.drift.stop()  # before the ledger: a judge call cut short still leaves its row
        if self.slo is not None:
            await self.slo.stop()
        if "access" in owned:
            await self.access.stop()  # after the last request: its settlement applied
        if "alerts" in owned:
            await self.outbox.stop()
        if "ledger" in owned and self.ledger is not None:
            await self.ledger.stop()
        if "alerts" in owned and self.alerts is not None:
            await self.alerts.stop()
        if self.cache is not None:
            await self.cache.drain()  # answers being stored land before the store may close
        if "cache" in owned and self.semantic_feed is not None:
            await self.semantic_feed.stop()
        if "cache" in owned and self.cache_store is not None:
            await self.cache_store.close()
        for tokens in self.access_tokens:
            await tokens.stop()
        if "responses" in owned:
            await self.responses.close()
        if "batches" in owned:
            await self.batches.close()
        for source in self.aws_credentials:
            await source.stop()
        if "tracer" in owned and self.tracer is not None:
            await asyncio.to_thread(self.tracer.shutdown)  # the last spans exported (bounded by its timeout)

    def leave(self) -> None:
        """A request on a retired runtime has ended (the server counts ``active`` itself)."""
        if self.retired and self.active == 0:
            self._idle.set()

    async def retire(self) -> None:
        """Replaced: wait for its last request (stream included) to end, then stop."""
        self.retired = True
        if self.active == 0:
            self._idle.set()
        await self._idle.wait()
        await self.stop()

    async def _open_responses(self) -> None:
        """Open the responses' store; one that cannot be opened now is tried again at its first use."""
        try:
            await self.responses.open()
        except Exception as exc:  # noqa: BLE001 - an unreachable database must not stop the start-up
            log.warning("could not open the responses store (%s): it is tried again when used", type(exc).__name__)

    async def _open_batches(self) -> None:
        """Open the batch store; one that cannot be opened now is tried again at its first use."""
        try:
            await self.batches.open()
        except Exception as exc:  # noqa: BLE001 - an unreachable database must not stop the start-up
            log.warning("could not open the batch store (%s): it is tried again when used", type(exc).__name__)

    async def _seed_budgets(self) -> None:
        """Memory counters start empty: give each budget the spend the ledger already holds."""
        directory, ledger = self.access.directory, self.ledger
        if self.access.backend != "memory" or directory is None or ledger is None or not directory.loaded:
            return
        try:
            await seed_budgets(self.access.quota, directory.snapshot(), ledger.store, self.process.clock.time())
        except Exception as exc:  # noqa: BLE001 - a ledger that cannot be read must not stop the start-up
            log.warning(
                "could not read this period's spend from the ledger (%s): budgets start from 0", type(exc).__name__
            )


def unchanged_deployments(old: Config, new: Config) -> set[str]:
    """Deployments configured the same way, on a provider configured the same way, in both configs."""
    same: set[str] = set()
    for name, deployment in new.deployments.items():
        before = old.deployments.get(name)
        if before is None or before != deployment:
            continue
        if old.providers.get(deployment.provider) == new.providers.get(deployment.provider):
            same.add(name)
    return same
