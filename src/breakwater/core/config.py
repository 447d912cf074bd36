"""The validated configuration model: providers, deployments, routes.

One YAML file describes where to call (providers), which upstream model on which provider
(deployments), and the public model names clients send (routes). Every problem is reported
with its key path and what was expected, all at once, so ``check-config`` is a to-do list and
not a game of whack-a-mole.

Credentials are references (``env:NAME`` or ``file:/path``), never values: a config file can be
committed, printed and diffed without leaking anything. Resolving them is I/O and happens in
``breakwater.infra.credentials``.

Later features slot in as new optional keys on routes and deployments (``retry``, ``fallbacks``,
``cache``, ``limits``, ``variants``), which is why every model forbids unknown keys: a typo is an
error today, and a new key is never silently ignored by an older gateway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from breakwater.core import pricing

WireType = Literal["openai", "anthropic", "gemini", "mock"]
MockWire = Literal["openai", "anthropic", "gemini"]
Strategy = Literal["ordered", "weighted", "least_in_flight", "lowest_latency"]

_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")


def _secret_reference(value: str | None) -> str | None:
    if value is not None and not _SECRET_REF.match(value):
        raise ValueError("must be a reference, 'env:NAME' or 'file:/path'; keys are never written inline")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Model):
    """Seconds. ``None`` means no limit of that kind (the total limit always applies)."""

    connect: float = Field(default=10.0, gt=0)
    total: float = Field(default=600.0, gt=0)
    first_token: float | None = Field(default=None, gt=0)
    idle: float | None = Field(default=None, gt=0)


class RetryPolicy(_Model):
    """How a route retries retryable failures (429, 5xx, 529, timeouts, connection errors).

    Backoff is exponential with full jitter: a random delay in [0, min(max_delay, base * 2^n)],
    raised to the upstream's Retry-After when it sent one, and never past the request's deadline.
    """

    max_attempts: int = Field(default=3, ge=1, le=20)
    base_delay_s: float = Field(default=0.2, ge=0)
    max_delay_s: float = Field(default=5.0, ge=0)
    #: retries may be at most this share of a deployment's requests over the window (retry budget)
    budget_ratio: float = Field(default=0.2, ge=0, le=1)
    budget_window_s: float = Field(default=10.0, gt=0)
    #: retries always allowed per window, so a quiet deployment can still retry
    budget_min_retries: int = Field(default=3, ge=0)


class BreakerPolicy(_Model):
    """One circuit breaker per deployment: closed -> open -> half-open -> closed."""

    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window_s: float = Field(default=30.0, gt=0)
    min_volume: int = Field(default=20, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)
    #: a 429 takes the deployment out of rotation for its Retry-After (without counting a failure)
    cool_down_on_429: bool = True


class Price(_Model):
    """Price override in USD per million tokens (self-hosted models, negotiated rates).

    Written as numbers or strings, they become ``Decimal`` as written (``"0.3"`` is exactly
    0.3). Unset rates fall back: cache rates to the input rate, reasoning to the output rate.
    """

    input_per_mtok: Decimal = Field(ge=0, allow_inf_nan=False)
    output_per_mtok: Decimal = Field(ge=0, allow_inf_nan=False)
    cached_input_per_mtok: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    cache_write_per_mtok: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    reasoning_per_mtok: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)

    def to_price(self) -> pricing.Price:
        return pricing.Price(
            input=self.input_per_mtok,
            output=self.output_per_mtok,
            cached_input=self.cached_input_per_mtok,
            cache_write=self.cache_write_per_mtok,
            reasoning=self.reasoning_per_mtok,
        )


class Provider(_Model):
    """Where and how to call. ``type`` is the wire protocol; ``host`` picks a row of quirks."""

    type: WireType
    host: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # only for type "mock": which wire format the in-process mock speaks, and its fault schedule
    wire: MockWire = "openai"
    faults: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("api_key")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        return _secret_reference(value)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


class Deployment(_Model):
    """One upstream model on one provider."""

    provider: str
    model: str
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    timeouts: Timeouts | None = None
    price: Price | None = None
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    #: at most this many requests in flight to the deployment; more wait in a fair queue
    max_concurrency: int | None = Field(default=None, ge=1)
    #: requests that may wait for a slot (with ``max_concurrency``); beyond that, 429 at once
    max_queue: int = Field(default=100, ge=0)
    # provider-specific fields merged into every upstream request body (e.g. Ollama "options")
    extra_body: dict[str, Any] = Field(default_factory=dict)


class RouteTarget(_Model):
    deployment: str
    weight: float = Field(default=1.0, gt=0)


class Fallbacks(_Model):
    """Other routes to try, by why this route failed. Each list is tried in order."""

    #: after every deployment of the route failed with a retryable error
    general: list[str] = Field(default_factory=list)
    #: when the prompt does not fit any deployment's context window (estimated before sending,
    #: or the upstream said so)
    context_window: list[str] = Field(default_factory=list)
    #: when the upstream refused the content
    content_filter: list[str] = Field(default_factory=list)
    #: when content is refused and no content_filter route serves it: answer with this text
    #: (finish_reason ``content_filter``) instead of an error
    content_filter_message: str | None = None


class RouteLimits(_Model):
    """Caps on a route as a whole, across every caller (``docs/access.md``)."""

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)


class MaxTokensGuard(_Model):
    """The output a request may ask for on a route: a default when it names none, and a cap."""

    #: ``max_tokens`` given to requests that send none
    default: int | None = Field(default=None, ge=1)
    #: the most a request may ask for
    cap: int | None = Field(default=None, ge=1)
    #: a request over the cap: ``reject`` (400 naming max_tokens) or ``clip`` it to the cap
    over_cap: Literal["reject", "clip"] = "reject"

    @model_validator(mode="after")
    def _default_within_cap(self) -> MaxTokensGuard:
        if self.default is not None and self.cap is not None and self.default > self.cap:
            raise ValueError("default must not exceed cap")
        return self


class CaptureSettings(_Model):
    """Store prompts and answers (redacted) in the ledger for a sample of a route's requests."""

    enabled: bool = False
    sample_rate: float = Field(default=1.0, gt=0, le=1)
    max_chars: int = Field(default=20_000, ge=1)


class Route(_Model):
    """A public model name. Either a list of deployments, or (for ``prefix/*``) a provider."""

    deployments: list[RouteTarget] = Field(default_factory=list)
    provider: str | None = None
    strategy: Strategy = "ordered"
    unsupported_params: Literal["reject", "drop"] = "reject"
    timeouts: Timeouts | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    fallbacks: Fallbacks = Field(default_factory=Fallbacks)
    #: a deployment at its ``max_concurrency`` is skipped for the next one instead of queueing
    overflow: bool = False
    #: a stream that fails after sending: ``error`` ends it with an error; ``continue`` resumes it
    #: on another deployment with the text so far as an assistant prefix
    stream_failure: Literal["error", "continue"] = "error"
    #: prompt and answer capture into the ledger (off by default; see docs/observability.md)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    #: caps on the route as a whole: requests and tokens per minute, requests in flight
    limits: RouteLimits | None = None
    #: a default ``max_tokens`` and a cap for requests on this route
    max_tokens: MaxTokensGuard | None = None
    description: str | None = None

    @field_validator("deployments", mode="before")
    @classmethod
    def _names_allowed(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"deployment": v} if isinstance(v, str) else v for v in value]
        return value


class ServerSettings(_Model):
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    #: after SIGTERM, seconds to keep serving with /readyz at 503 so load balancers stop sending
    #: (0: stop accepting at once; 5 or more behind Kubernetes)
    drain_delay_s: float = Field(default=0.0, ge=0)
    #: then, seconds in-flight requests and streams may take to finish before they are cut
    drain_timeout_s: float = Field(default=30.0, ge=0)
    #: ``env:NAME`` or ``file:/path``: the bearer token ``/admin/*`` requires (unset: open)
    admin_key: str | None = None

    @field_validator("admin_key")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        return _secret_reference(value)


def _database_url(value: str) -> str:
    """``sqlite:///path``, ``postgresql://...`` (no password inline) or an ``env:`` / ``file:`` reference."""
    if value.startswith(("env:", "file:")):
        return value
    if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError("expected sqlite:///path, postgresql://..., or an env:NAME / file:/path reference")
    if re.match(r"postgres(ql)?://[^/@]*:[^/@]*@", value):
        raise ValueError("a database password does not belong in the config: use env:NAME or file:/path")
    return value


class LedgerSettings(_Model):
    """Where the request ledger (one row per request) is written."""

    enabled: bool = True
    #: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``postgresql://user@host/db``; a
    #: URL with a password belongs in the environment or a file: ``env:NAME`` / ``file:/path``
    url: str = "sqlite:///breakwater-ledger.db"
    #: append-only file rows go to while the database is slow or down; replayed in order after
    spool_path: str = "breakwater-ledger.spool"
    batch_size: int = Field(default=500, ge=1)
    flush_interval_s: float = Field(default=0.2, gt=0)
    #: rows older than this are deleted in the background (``None``: kept for ever)
    retention_days: float | None = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return _database_url(value)


class SessionSettings(_Model):
    """Caps per agent session (requests sending ``x-breakwater-session``), so a runaway loop stops."""

    max_calls: int | None = Field(default=None, ge=1)
    max_spend_usd: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    #: a session unused this long is forgotten (its counts start again)
    idle_ttl_s: int = Field(default=86_400, ge=60)


class AccessSettings(_Model):
    """Virtual keys: who may call, and where keys, teams and limits are stored (docs/access.md)."""

    #: ``false`` serves anyone without a key: for local development only (a warning at start-up
    #: and in ``/readyz``)
    enabled: bool = True
    #: the key store: ``sqlite:///path`` (default), ``postgresql://...`` for several replicas, or
    #: an ``env:NAME`` / ``file:/path`` reference to one
    store: str = "sqlite:///breakwater-keys.db"
    #: ``env:NAME`` or ``file:/path``: the secret keys are hashed with (HMAC-SHA256). Unset with a
    #: SQLite store: a random secret kept in ``<store file>.secret``; required with PostgreSQL
    hash_secret: str | None = None
    #: seconds between checks of the store's version for changes made elsewhere (one indexed
    #: query): what bounds how stale a PostgreSQL replica without Redis may be. A SQLite store is
    #: also watched every 0.25 s for another process's commit; Redis pub/sub is immediate
    reload_s: float = Field(default=1.0, gt=0)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    #: budget alerts fire when spend first crosses these shares of a budget in a period
    budget_alerts: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0])

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return _database_url(value)

    @field_validator("hash_secret")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        return _secret_reference(value)

    @field_validator("budget_alerts")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if any(not 0 < v <= 1 for v in value):
            raise ValueError("each share must be above 0 and at most 1")
        return sorted(set(value))


class RedisSettings(_Model):
    """The Redis that replicas share (limit counters, key-cache invalidation)."""

    #: ``redis://host:6379/0``, ``rediss://`` or ``unix://``; with a password, an ``env:NAME`` /
    #: ``file:/path`` reference instead
    url: str
    #: no request waits longer than this for Redis: it goes on without it (limits counted locally)
    timeout_ms: float = Field(default=100.0, gt=0)
    #: prefix of every key and channel Breakwater uses
    namespace: str = Field(default="bw:", min_length=1)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value.startswith(("env:", "file:")):
            return value
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "expected redis://host:port/db, rediss://..., unix://... or an env:NAME / file:/path reference"
            )
        if re.match(r"rediss?://[^/@]*:[^/@]+@", value):
            raise ValueError("a Redis password does not belong in the config: use url: env:NAME or file:/path")
        return value


class LimitsSettings(_Model):
    """Where limit and budget counters live, and what happens when that place is unreachable."""

    #: ``memory``: this process only (one process); ``redis``: shared by every replica and worker
    backend: Literal["memory", "redis"] = "memory"
    #: Redis unreachable: ``open`` counts in local memory meanwhile (every request still limited
    #: per replica); ``closed`` refuses requests that have limits (503) until Redis is back
    on_backend_failure: Literal["open", "closed"] = "open"
    #: while counting locally, each replica allows this share of every limit (1 / replicas keeps
    #: the total near the limit)
    local_share: float = Field(default=1.0, gt=0, le=1)
    #: seconds between checks that an unreachable Redis is back
    probe_s: float = Field(default=1.0, gt=0)


class TracingSettings(_Model):
    """OpenTelemetry traces (GenAI semantic conventions), built after each request ends."""

    enabled: bool = False
    #: ``otlp``: OTLP over HTTP (protobuf) to ``endpoint``; ``console``: stdout; ``none``: nowhere
    exporter: Literal["otlp", "console", "none"] = "otlp"
    #: the collector's traces URL, ``http://collector:4318/v1/traces`` (a bare ``http://host:4318``
    #: gets ``/v1/traces``); unset: the ``OTEL_EXPORTER_OTLP_*`` environment, else localhost:4318
    endpoint: str | None = None
    #: sent with every export; a value that is a secret goes in as ``env:NAME`` or ``file:/path``
    headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = "breakwater"
    #: share of new traces kept; a caller's ``traceparent`` sampling decision always wins
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    #: prompts and answers as span events; off by default (they may hold personal data)
    capture_content: bool = False

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


class SpendOutlierRule(_Model):
    factor: float = Field(default=10.0, gt=1)
    window_s: float = Field(default=3600.0, gt=0)
    min_spend_usd: float = Field(default=0.10, ge=0)


class LengthShareRule(_Model):
    threshold: float = Field(default=0.2, gt=0, le=1)
    window_s: float = Field(default=900.0, gt=0)
    min_requests: int = Field(default=50, ge=1)


class ErrorRateRule(_Model):
    threshold: float = Field(default=0.05, gt=0, le=1)
    window_s: float = Field(default=300.0, gt=0)
    min_requests: int = Field(default=50, ge=1)


class P95LatencyRule(_Model):
    threshold_ms: float = Field(default=10_000.0, gt=0)
    window_s: float = Field(default=300.0, gt=0)
    min_requests: int = Field(default=50, ge=1)


class AlertSettings(_Model):
    """Alert rules (each off unless given) and where alerts go besides the log."""

    #: a URL, or ``env:NAME`` / ``file:/path`` when the URL carries a token (Slack, PagerDuty)
    webhook: str | None = None
    interval_s: float = Field(default=60.0, gt=0)
    spend_outlier: SpendOutlierRule | None = None
    length_share: LengthShareRule | None = None
    error_rate: ErrorRateRule | None = None
    p95_latency: P95LatencyRule | None = None


class Config(_Model):
    version: Literal[1] = 1
    server: ServerSettings = Field(default_factory=ServerSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    redis: RedisSettings | None = None
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    providers: dict[str, Provider] = Field(default_factory=dict)
    deployments: dict[str, Deployment] = Field(default_factory=dict)
    routes: dict[str, Route] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """The config is invalid; ``problems`` lists every one of them."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse and validate YAML text into a ``Config``.

    Raises:
        ConfigError: with every problem found, each with its key path.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem(where, f"not valid YAML: {problem}")]) from None
    return build_config(data if data is not None else {}, source)


def build_config(data: Any, source: str = "<config>") -> Config:
    """Validate already-parsed data (a dict) into a ``Config``."""
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "expected a mapping at the top level")])
    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
    problems.extend(p for p in cross_check(data) if p not in problems)
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def _problem(error: Any) -> Problem:
    parts: list[str] = []
    for item in error["loc"]:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    elif error["type"] == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return Problem("".join(parts), msg)


def _section(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """The entries of a top-level section that are mappings (type errors are reported elsewhere)."""
    section = data.get(key)
    if not isinstance(section, dict):
        return {}
    return {str(k): v for k, v in section.items() if isinstance(v, dict)}


def _one_of(names: list[str]) -> str:
    return ", ".join(names) or "none defined"


def cross_check(data: dict[str, Any]) -> list[Problem]:
    """Checks that span sections: references resolve, wildcards are well formed.

    Works on the raw mapping, not the validated model, so it runs even when field validation
    failed and ``check-config`` can report both kinds of problem in one pass.
    """
    problems: list[Problem] = []
    providers = _section(data, "providers")
    deployments = _section(data, "deployments")
    known_providers = sorted(providers)
    known_deployments = sorted(deployments)

    def provider_ref(path: str, value: Any) -> None:
        if isinstance(value, str) and value not in providers:
            problems.append(Problem(path, f"unknown provider {value!r} (expected one of: {_one_of(known_providers)})"))

    for name, dep in deployments.items():
        provider_ref(f"deployments.{name}.provider", dep.get("provider"))
    for name, p in providers.items():
        if p.get("type") == "openai" and not p.get("base_url") and p.get("host") in (None, "azure", "custom"):
            problems.append(Problem(f"providers.{name}.base_url", "required unless 'host' names a known host"))
        if p.get("faults") and p.get("type") != "mock":
            problems.append(Problem(f"providers.{name}.faults", "only a provider of type 'mock' takes faults"))
    limits = data.get("limits")
    if isinstance(limits, dict) and limits.get("backend") == "redis" and not isinstance(data.get("redis"), dict):
        problems.append(Problem("limits.backend", "the redis backend needs a 'redis' section with its url"))
    access = data.get("access")
    if isinstance(access, dict) and access.get("enabled", True) is not False:
        store = access.get("store")
        if isinstance(store, str) and not store.startswith("sqlite:") and not access.get("hash_secret"):
            problems.append(
                Problem(
                    "access.hash_secret",
                    "required with a shared key store (env:NAME or file:/path), so every replica hashes keys alike",
                )
            )
    routes = _section(data, "routes")
    for name, route in routes.items():
        path = f"routes.{name}"
        _check_fallbacks(path, name, route.get("fallbacks"), routes, problems)
        targets = route.get("deployments") or []
        if name.endswith("/*"):
            if route.get("provider") is None:
                problems.append(Problem(f"{path}.provider", "a wildcard route needs the provider it forwards to"))
            provider_ref(f"{path}.provider", route.get("provider"))
            if targets:
                problems.append(Problem(f"{path}.deployments", "a wildcard route takes 'provider', not deployments"))
            continue
        if "*" in name:
            problems.append(Problem(path, "'*' is only allowed as a final '/*' (e.g. 'openai/*')"))
        if route.get("provider") is not None:
            problems.append(Problem(f"{path}.provider", "only wildcard routes ('prefix/*') take a provider"))
        if not targets:
            problems.append(Problem(f"{path}.deployments", "a route needs at least one deployment"))
        if not isinstance(targets, list):
            continue
        for i, target in enumerate(targets):
            ref = target.get("deployment") if isinstance(target, dict) else target
            if isinstance(ref, str) and ref not in deployments:
                problems.append(
                    Problem(
                        f"{path}.deployments[{i}]",
                        f"unknown deployment {ref!r} (expected one of: {_one_of(known_deployments)})",
                    )
                )
    return problems


def _check_fallbacks(
    path: str, name: str, fallbacks: Any, routes: dict[str, dict[str, Any]], problems: list[Problem]
) -> None:
    """Fallback lists name other, non-wildcard routes."""
    if not isinstance(fallbacks, dict):
        return
    known = sorted(r for r in routes if not r.endswith("/*"))
    for kind in ("general", "context_window", "content_filter"):
        refs = fallbacks.get(kind)
        if not isinstance(refs, list):
            continue
        for i, ref in enumerate(refs):
            where = f"{path}.fallbacks.{kind}[{i}]"
            if not isinstance(ref, str):
                continue
            if ref == name:
                problems.append(Problem(where, "a route cannot fall back to itself"))
            elif ref not in routes or ref.endswith("/*"):
                problems.append(Problem(where, f"unknown route {ref!r} (expected one of: {_one_of(known)})"))
