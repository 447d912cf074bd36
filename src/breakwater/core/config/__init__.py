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

Modules, one per concern (this package re-exports their public names):

- ``parse``: ``parse_config`` / ``build_config``, ``Problem``, ``ConfigError``, YAML reading,
  key paths of validation errors; ``references.py``: ``cross_check`` (checks that span sections)
- ``model``: ``Config``, the whole file
- ``providers``: the ``providers`` and ``deployments`` sections, and price overrides
- ``routes``: the ``routes`` section (targets, fallbacks, route limits, the max_tokens guard)
- ``policies``: timeouts, the retry policy and the circuit breaker
- ``access``: the ``access`` (keys, sessions, budget alerts) and ``limits`` sections
- ``observability``: the ``ledger``, ``tracing`` and ``alerts`` sections, and route ``capture``
- ``server``: the ``server`` and ``redis`` sections
- ``prompts``: the ``prompts`` section (named templates, their versions and typed variables)
- ``cache``: a route's ``cache`` policy and the top-level ``cache`` section (its backend)
- ``base``: the strict base model and the checks of ``env:`` / ``file:`` and database URLs
- ``paths``: relative paths of a config file anchored at its directory (``anchor_paths``)
"""

from __future__ import annotations

from breakwater.core.config.access import AccessSettings, LimitsSettings, SessionSettings
from breakwater.core.config.cache import CacheSettings, RouteCache
from breakwater.core.config.model import Config
from breakwater.core.config.observability import (
    AlertSettings,
    CaptureSettings,
    ErrorRateRule,
    LedgerSettings,
    LengthShareRule,
    P95LatencyRule,
    PromptCacheDropRule,
    SpendOutlierRule,
    TracingSettings,
)
from breakwater.core.config.parse import ConfigError, Problem, build_config, parse_config
from breakwater.core.config.policies import BreakerPolicy, RetryPolicy, Timeouts
from breakwater.core.config.providers import Deployment, MockWire, Price, Provider, WireType
from breakwater.core.config.references import cross_check
from breakwater.core.config.refusals import RefusalSettings
from breakwater.core.config.routes import Fallbacks, MaxTokensGuard, Route, RouteLimits, Strategy
from breakwater.core.config.server import RedisSettings, ServerSettings, TlsSettings
from breakwater.core.config.targets import Branch, RouteTarget
from breakwater.core.config.variants import Arm, Variants

__all__ = [
    "AccessSettings",
    "AlertSettings",
    "Arm",
    "Branch",
    "BreakerPolicy",
    "CacheSettings",
    "CaptureSettings",
    "Config",
    "ConfigError",
    "Deployment",
    "ErrorRateRule",
    "Fallbacks",
    "LedgerSettings",
    "LengthShareRule",
    "LimitsSettings",
    "MaxTokensGuard",
    "MockWire",
    "P95LatencyRule",
    "Price",
    "Problem",
    "PromptCacheDropRule",
    "Provider",
    "RedisSettings",
    "RefusalSettings",
    "RetryPolicy",
    "Route",
    "RouteCache",
    "RouteLimits",
    "RouteTarget",
    "ServerSettings",
    "SessionSettings",
    "SpendOutlierRule",
    "Strategy",
    "Timeouts",
    "TlsSettings",
    "TracingSettings",
    "Variants",
    "WireType",
    "build_config",
    "cross_check",
    "parse_config",
]
