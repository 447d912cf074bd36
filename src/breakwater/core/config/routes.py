"""The ``routes`` section: the public model names clients send, and how each is served."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from breakwater.core.config.base import _Model
from breakwater.core.config.branching import Cascade, Learned, Rule
from breakwater.core.config.cache import RouteCache
from breakwater.core.config.dlp import RouteDlp
from breakwater.core.config.drift import RouteDrift
from breakwater.core.config.injection import RouteInjection
from breakwater.core.config.observability import CaptureSettings
from breakwater.core.config.output import RouteOutput
from breakwater.core.config.policies import RetryPolicy, Timeouts
from breakwater.core.config.shadow import RouteShadow
from breakwater.core.config.slo import RouteSlo
from breakwater.core.config.targets import Branch, RouteTarget, _targets
from breakwater.core.config.trim import RouteTrim
from breakwater.core.config.variants import Variants
from breakwater.core.regions import PATTERN as REGION

Strategy = Literal["ordered", "weighted", "least_in_flight", "lowest_latency"]


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
    #: the answer cache (docs/caching.md): off unless ``mode`` says ``exact``
    cache: RouteCache = Field(default_factory=RouteCache)
    #: where requests go instead of the route's own deployments (docs/routing.md): named
    #: branches, chosen by ``rules`` (then ``learned``, then ``default``) or tried as a ``cascade``
    branches: dict[str, Branch] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    learned: Learned | None = None
    default: str | None = None
    cascade: Cascade | None = None
    #: the branch a branching route's savings are counted against (docs/routing.md, "Saved by
    #: routing"); unset: the cascade's last step, else the learned router's ``strong``, else ``default``
    baseline: str | None = None
    #: a candidate route that gets a copy of a share of this route's requests; its answers are
    #: compared and recorded, never returned (docs/safe-change.md)
    shadow: RouteShadow | None = None
    #: a sampled share of the route's answers graded by eval assertions off the request path, the
    #: rolling score watched against the window before it (docs/evals.md, "Drift watch")
    drift: RouteDrift | None = None
    #: personal data and secrets in requests: allowed, logged, redacted, masked or blocked, by
    #: kind (docs/guardrails.md); each provider's ``dlp`` may differ for what it receives
    dlp: RouteDlp | None = None
    #: a prompt every request on the route gets (docs/prompts.md): ``name`` (its current version)
    #: or ``name@3``
    prompt: str | None = None
    #: prompt-injection scoring of user turns and tool results (docs/guardrails.md)
    injection: RouteInjection | None = None
    #: canary / A-B arms with sticky assignment (docs/variants.md); not with ``branches``
    variants: Variants | None = None
    #: checks on the route's answers (docs/guardrails.md): a system-prompt leak canary, deny
    #: patterns, personal data, structured outputs validated (with a repair retry)
    output: RouteOutput | None = None
    #: the oldest turns dropped or summarised when a prompt is over a token budget
    #: (docs/configuration.md, "History trimming")
    trim: RouteTrim | None = None
    #: the regions this route's requests may go to (data residency; docs/configuration.md): its
    #: deployments, its fallback routes' and every side call made for its requests are held to it
    allowed_regions: list[Annotated[str, Field(pattern=REGION)]] | None = None
    #: service-level objectives with error budgets and burn-rate alerts (docs/slo.md)
    slo: RouteSlo | None = None
    description: str | None = None

    @field_validator("deployments", mode="before")
    @classmethod
    def _names_allowed(cls, value: Any) -> Any:
        return _targets(value)
