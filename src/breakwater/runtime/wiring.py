"""Turn a validated config into a running router: adapters, targets, credentials, senders.

This is the one place that knows every layer, which is why it lives in the server. It also
holds the checks that need more than the config text (known hosts, credentials that resolve,
valid mock fault rules), shared by ``check-config`` and ``serve`` so both say the same thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from breakwater.core.config import Branch, BreakerPolicy, Config, Problem, RouteCache, Timeouts
from breakwater.core.config import Provider as ProviderConfig
from breakwater.core.config import Route as RouteConfig
from breakwater.core.limits import Limits
from breakwater.core.prices import MOCK_HOST, PriceBook, deprecated
from breakwater.core.pricing import Price
from breakwater.core.retirement import Retirement
from breakwater.engine.ports import Clock, HttpSender, RandomSource
from breakwater.engine.routing import Deployment, Route, Router, WildcardFactory
from breakwater.infra.credentials import CredentialError, is_reference, resolve
from breakwater.infra.google_auth import (
    AccessTokens,
    BearerSender,
    GoogleAuthMissing,
    credentials_info,
    credentials_loader,
    require_google_auth,
    secrets_of,
)
from breakwater.infra.mock.faults import validate_faults
from breakwater.infra.mock.model import MockModel, ScriptedAnswer
from breakwater.infra.mock.service import MockService
from breakwater.infra.mock.transport import MockSender
from breakwater.providers.base import Target
from breakwater.providers.hosts import HOSTS, host
from breakwater.providers.registry import DEFAULT_BASE_URLS, adapter_for
from breakwater.providers.vertex import location_url, vertex_wire
from breakwater.runtime.bedrock import AwsProvider, build_aws, check_aws, speaks_bedrock
from breakwater.runtime.branching import check_learned
from breakwater.runtime.drifting import check_drift
from breakwater.runtime.eval_gate import check_gates
from breakwater.runtime.tls import tls_problems

_MOCK_BASE_URLS = {
    "openai": "http://mock/v1",
    "anthropic": "http://mock",
    "gemini": "http://mock",
    "bedrock": "http://mock",
}


def check_environment(config: Config, environ: Mapping[str, str]) -> list[Problem]:
    """Problems only visible outside the config text: unknown hosts, unresolved credentials, faults."""
    problems: list[Problem] = []
    references = [("server.admin_key", config.server.admin_key)]
    if config.access.enabled:
        references.append(("access.hash_secret", config.access.hash_secret))
        if is_reference(config.access.store):
            references.append(("access.store", config.access.store))
    if config.redis is not None and is_reference(config.redis.url):
        references.append(("redis.url", config.redis.url))
    for path, reference in references:
        try:
            resolve(reference, environ)
        except CredentialError as exc:
            problems.append(Problem(path, str(exc)))
    for name, p in config.providers.items():
        if p.host is not None and p.host not in HOSTS:
            problems.append(
                Problem(f"providers.{name}.host", f"unknown host {p.host!r} (expected one of: {', '.join(HOSTS)})")
            )
        if p.type != "mock" and p.host == "azure" and not p.api_version:
            problems.append(Problem(f"providers.{name}.api_version", "Azure OpenAI needs an api_version"))
        try:
            resolve(p.api_key, environ)
        except CredentialError as exc:
            problems.append(Problem(f"providers.{name}.api_key", str(exc)))
        if p.type == "vertex":
            problems.extend(_vertex_problems(name, p, environ))
        for message in validate_faults(p.faults):
            problems.append(Problem(f"providers.{name}.faults", message))
        for i, rule in enumerate(p.answers):
            try:
                ScriptedAnswer.parse(rule)
            except ValueError as exc:
                problems.append(Problem(f"providers.{name}.answers[{i}]", str(exc)))
    problems.extend(check_aws(config, environ))
    problems.extend(check_learned(config))
    problems.extend(check_drift(config))
    problems.extend(check_gates(config))
    problems.extend(tls_problems(config.server.tls, environ))
    return problems


def _vertex_problems(name: str, p: ProviderConfig, environ: Mapping[str, str]) -> list[Problem]:
    """google-auth installed, and the credentials reference (if any) naming a credentials JSON."""
    try:
        require_google_auth()
        if p.credentials is not None:
            credentials_info(p.credentials, environ)
    except GoogleAuthMissing as exc:
        return [Problem(f"providers.{name}.type", str(exc))]
    except CredentialError as exc:
        return [Problem(f"providers.{name}.credentials", str(exc))]
    return []


def price_host(config: Config, provider: str) -> str | None:
    """Whose list prices a provider's models are billed at: its host, or the vendor its wire
    names when it calls that vendor's own API; ``"mock"`` for the mock (free: ``MOCK_HOST``);
    ``None`` for a server on a ``base_url`` of its own (give its deployments a ``price:``)."""
    p = config.providers.get(provider)
    if p is None:
        return None
    if p.type == "mock" or p.host == "mock":
        return MOCK_HOST
    if p.host is not None:
        return p.host
    return p.type if not p.base_url or p.type == "vertex" else None


def retirements(config: Config) -> list[Retirement]:
    """The deployments whose model retires: a ``retires`` date, else the price list's deprecated mark."""
    found = []
    for name, d in config.deployments.items():
        if d.retires is not None:
            found.append(Retirement(name, d.model, d.retires, "config"))
        elif deprecated(price_host(config, d.provider), d.model):
            found.append(Retirement(name, d.model, None, "price-list"))
    return found


def sends_to(route: RouteConfig) -> Mapping[str, Branch]:
    """Where a route sends its requests instead of its own deployments: its branches, or its
    variants' arms (a route has one or the other: cross_check); empty for a plain route."""
    if route.variants is not None:
        return route.variants.arms
    return route.branches


def _limits(route: RouteConfig) -> Limits | None:
    caps = route.limits
    if caps is None:
        return None
    limits = Limits(rpm=caps.rpm, tpm=caps.tpm, max_concurrent=caps.max_concurrent)
    return None if limits.empty else limits


class Wiring:
    """Builds the ``Router`` for a config; ``sender`` is the shared upstream HTTP client."""

    def __init__(
        self, config: Config, environ: Mapping[str, str], sender: HttpSender, clock: Clock, rng: RandomSource
    ) -> None:
        self.config = config
        self.environ = environ
        self.sender = sender
        self.clock = clock
        self.rng = rng
        self._mock_senders: dict[str, HttpSender] = {}
        #: the access tokens of each Vertex provider, built with its first deployment; the runtime
        #: starts and stops their refreshers
        self.access_tokens: dict[str, AccessTokens] = {}
        #: each Bedrock provider's signer and credentials source (the runtime starts the sources)
        self.aws: dict[str, AwsProvider] = {
            name: build_aws(p, environ, clock) for name, p in config.providers.items() if speaks_bedrock(p)
        }

    def router(self) -> Router:
        routes: dict[str, Route] = {}
        wildcards: dict[str, tuple[str, WildcardFactory]] = {}
        for name, route in self.config.routes.items():
            if name.endswith("/*"):
                assert route.provider is not None  # guaranteed by cross_check
                wildcards[name[:-1]] = (route.provider, self._wildcard_factory(name, route))
            elif not sends_to(route):
                routes[name] = self._route(name, route)
        pending = {name: route for name, route in self.config.routes.items() if sends_to(route)}
        while pending:  # a branching route after the routes its branches name (no cycles: cross_check)
            for name, route in list(pending.items()):
                if all(b.route is None or b.route in routes for b in sends_to(route).values()):
                    routes.update(self._branching(name, route, routes))
                    del pending[name]
        return Router(routes=routes, wildcards=wildcards, rng=self.rng)

    def _branching(self, name: str, route: RouteConfig, built: Mapping[str, Route]) -> dict[str, Route]:
        """A branching route (or one with variants: its arms are its branches here), and a hidden
        ``<name>.<branch>`` route for each branch with deployments of its own (the parent's
        policies, without its branches, limits and cache: those apply to the parent).

        The router stage sends a branching route's requests to a branch; its own deployments are
        every branch's, for what is estimated before a branch is chosen (the tokens and the most a
        request may cost, checked against limits and budgets).
        """
        made: dict[str, Route] = {}
        targets = []
        for branch, target in sends_to(route).items():
            if target.route is not None:
                targets.append(target.route)
                continue
            hidden = f"{name}.{branch}"
            own = route.model_copy(
                update={"deployments": target.deployments, "branches": {}, "rules": [], "learned": None,
                        "default": None, "cascade": None, "variants": None, "limits": None,
                        "cache": RouteCache()}
            )  # fmt: skip
            made[hidden] = dataclasses.replace(self._route(hidden, own), hidden=True)
            targets.append(hidden)
        every = {d.name: d for t in targets for d in (made.get(t) or built[t]).deployments}
        made[name] = Route(
            name=name,
            deployments=tuple(every.values()),
            weights=tuple(1.0 for _ in every),
            limits=_limits(route),
            limits_name=name,
            max_tokens=route.max_tokens,
            cache=route.cache if route.cache.mode != "off" else None,
            branch_targets=tuple(targets),
            allowed_regions=_regions(route),
        )
        return made

    def _route(self, name: str, route: RouteConfig) -> Route:
        deployments = []
        for t in route.deployments:
            d = self.config.deployments[t.deployment]
            deployment = self._deployment(
                t.deployment,
                d.provider,
                d.model,
                d.timeouts or route.timeouts or Timeouts(),
                d.context_window,
                dict(d.extra_body),
                d.breaker,
            )
            if d.prompt_cache is not None and d.prompt_cache.auto:
                target = dataclasses.replace(deployment.target, auto_cache_min_tokens=d.prompt_cache.min_tokens)
                deployment = dataclasses.replace(deployment, target=target)
            if d.legacy_completions:
                target = dataclasses.replace(deployment.target, legacy_completions=True)
                deployment = dataclasses.replace(deployment, target=target)
            responses_api = d.responses_api if d.responses_api is not None else deployment.target.host == "openai"
            if responses_api and deployment.adapter.wire == "openai":
                target = dataclasses.replace(deployment.target, responses_api=True)
                deployment = dataclasses.replace(deployment, target=target)
            region = d.region or self.config.providers[d.provider].region
            deployments.append(
                dataclasses.replace(deployment, max_concurrency=d.max_concurrency, max_queue=d.max_queue, region=region)
            )
        first_provider = self.config.deployments[route.deployments[0].deployment].provider
        return Route(
            name=name,
            deployments=tuple(deployments),
            weights=tuple(t.weight for t in route.deployments),
            strategy=route.strategy,
            unsupported_params=route.unsupported_params,
            owner=first_provider,
            retry=route.retry,
            fallbacks=route.fallbacks,
            deadline_s=route.timeouts.total if route.timeouts else None,
            overflow=route.overflow,
            stream_failure=route.stream_failure,
            limits=_limits(route),
            limits_name=name,
            max_tokens=route.max_tokens,
            cache=route.cache if route.cache.mode != "off" else None,
            allowed_regions=_regions(route),
        )

    def _wildcard_factory(self, pattern: str, route: RouteConfig) -> WildcardFactory:
        provider = route.provider
        assert provider is not None
        limits = _limits(route)
        region, allowed = self.config.providers[provider].region, _regions(route)

        def make(model_name: str) -> Route:
            upstream = model_name.partition("/")[2]
            deployment = self._deployment(model_name, provider, upstream, route.timeouts or Timeouts(), None, {})
            deployment = dataclasses.replace(deployment, region=region)
            return Route(
                name=model_name,
                deployments=(deployment,),
                weights=(1.0,),
                unsupported_params=route.unsupported_params,
                owner=provider,
                retry=route.retry,
                fallbacks=route.fallbacks,
                stream_failure=route.stream_failure,
                limits=limits,
                limits_name=pattern,
                max_tokens=route.max_tokens,
                cache=route.cache if route.cache.mode != "off" else None,
                allowed_regions=allowed,
            )

        return make

    def _deployment(
        self,
        name: str,
        provider_name: str,
        model: str,
        timeouts: Timeouts,
        context_window: int | None,
        extra_body: dict[str, object],
        breaker: BreakerPolicy | None = None,
    ) -> Deployment:
        p = self.config.providers[provider_name]
        wire: str = p.wire if p.type == "mock" else p.type
        sender = self._mock_sender(provider_name, p) if p.type == "mock" else self.sender
        if p.type == "vertex":
            wire = vertex_wire(model)
            sender = BearerSender(self.sender, self._access_tokens(provider_name, p))
        target = Target(
            provider=provider_name,
            model=model,
            base_url=self.aws[provider_name].base_url if p.type == "bedrock" else self._base_url(p, wire),
            api_key=resolve(p.api_key, self.environ),
            api_version=p.api_version,
            host=p.host or _default_host(p),
            headers=dict(p.headers),
            extra_body=extra_body,
            signer=self.aws[provider_name].signer if provider_name in self.aws else None,
        )
        return Deployment(
            name=name,
            adapter=adapter_for(wire),
            target=target,
            sender=sender,
            timeouts=timeouts,
            is_mock=p.type == "mock" or p.host == "mock",
            context_window=context_window,
            breaker=breaker or BreakerPolicy(),
        )

    def _access_tokens(self, name: str, p: ProviderConfig) -> AccessTokens:
        tokens = self.access_tokens.get(name)
        if tokens is None:
            load = credentials_loader(p.credentials, self.environ)
            tokens = self.access_tokens[name] = AccessTokens(name, load, self.clock)
        return tokens

    def secrets(self) -> list[str]:
        """Every secret value the config references (provider keys, Vertex credentials and the keys
        inside them, admin key), for redaction."""
        found = [resolve(p.api_key, self.environ) for p in self.config.providers.values() if p.api_key]
        for p in self.config.providers.values():
            if p.credentials is not None:
                found.append(resolve(p.credentials, self.environ))
                found.extend(secrets_of(credentials_info(p.credentials, self.environ)))
        for ref in (self.config.server.admin_key, self.config.ledger.url):
            if ref is not None and is_reference(ref):
                found.append(resolve(ref, self.environ))
        return [value for value in found if value]

    def price_host(self, provider: str) -> str | None:
        """Whose list prices a provider's models are billed at (``price_host``)."""
        return price_host(self.config, provider)

    def price_overrides(self) -> dict[str, Price]:
        """The deployments' configured prices, by deployment name."""
        return {name: d.price.to_price() for name, d in self.config.deployments.items() if d.price is not None}

    def unpriced(self, prices: PriceBook) -> list[str]:
        """A warning for each configured deployment with no price (no ``price:``, no list price),
        naming it and the YAML that prices it; ``prices`` then stays quiet about them per request.

        Looking them up also fills ``prices``' cache, so the first requests pay a dict read.
        """
        warnings = []
        for name, d in self.config.deployments.items():
            if prices.known(name, self.price_host(d.provider), d.model) is None:
                prices.warned(name)
                warnings.append(
                    f"deployment {name!r} (provider {d.provider!r}, model {d.model!r}) has no known price: "
                    "its costs are counted as unpriced; add "
                    "price: {input_per_mtok: ..., output_per_mtok: ...} to it (USD per million tokens)"
                )
        return warnings

    def _base_url(self, p: ProviderConfig, wire: str) -> str:
        if p.type == "vertex":
            assert p.project is not None and p.location is not None  # the config model checks both
            return location_url(p.project, p.location, p.base_url, p.api_version)
        if p.base_url:
            return p.base_url
        if p.type == "mock":
            return _MOCK_BASE_URLS[wire]
        row = host(p.host)
        if row.base_url:
            return row.base_url
        return DEFAULT_BASE_URLS[wire]

    def _mock_sender(self, name: str, p: ProviderConfig) -> HttpSender:
        # one in-process mock per provider, so its fault schedule counts across its deployments
        sender = self._mock_senders.get(name)
        if sender is None:
            model = MockModel(answers=tuple(ScriptedAnswer.parse(a) for a in p.answers))
            sender = MockSender(MockService(self.clock, self.rng, list(p.faults), model=model))
            self._mock_senders[name] = sender
        return sender


def _regions(route: RouteConfig) -> frozenset[str] | None:
    """The route's ``allowed_regions`` (``None``: unrestricted)."""
    return None if route.allowed_regions is None else frozenset(route.allowed_regions)


def _default_host(p: ProviderConfig) -> str:
    """The host row of a provider that names none: OpenAI's own API, the mock, or a custom server."""
    if p.type == "mock":
        return "mock"
    return "openai" if p.type == "openai" and not p.base_url else "custom"
