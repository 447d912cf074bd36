"""The ``providers`` and ``deployments`` sections: where to call, and which upstream model.

Credentials are references (``env:NAME`` or ``file:/path``), never values: a config file can be
committed, printed and diffed without leaking anything. Resolving them is I/O and happens in
``breakwater.infra.credentials``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from breakwater.core import pricing
from breakwater.core.config.aws import AwsAuth
from breakwater.core.config.base import _Model, _secret_reference
from breakwater.core.config.dlp import ProviderDlp
from breakwater.core.config.policies import BreakerPolicy, Timeouts
from breakwater.core.regions import PATTERN as REGION

WireType = Literal["openai", "anthropic", "gemini", "vertex", "bedrock", "mock"]
MockWire = Literal["openai", "anthropic", "gemini", "bedrock"]


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
    #: scripted answers (``{text, model?, matches?, logprob?}``, the first that applies wins):
    #: docs/mock.md
    answers: list[dict[str, Any]] = Field(default_factory=list)
    #: what this provider's deployments may receive of personal data and secrets, over the
    #: route's ``dlp`` (docs/guardrails.md, "Per-provider policy")
    dlp: ProviderDlp | None = None
    #: where the provider's deployments process data, unless a deployment says otherwise
    region: str | None = Field(default=None, pattern=REGION)
    #: the provider's data-processing terms, for humans (read in the config file; never enforced)
    data_terms: str | None = None
    #: type vertex: the Google Cloud project and its location (a region such as ``us-east5``,
    #: ``global``, or a multi-region ``us`` / ``eu``): docs/configuration.md, "Google Vertex AI"
    project: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,61}[a-z0-9]$")
    location: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$")
    #: type vertex: a service-account (or workload identity federation) JSON by reference;
    #: unset, Application Default Credentials (metadata server, GOOGLE_APPLICATION_CREDENTIALS, gcloud)
    credentials: str | None = None
    #: ``type: bedrock`` (and a mock speaking it): region and AWS credentials (docs/configuration.md)
    aws: AwsAuth | None = None

    @field_validator("api_key", "credentials")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        return _secret_reference(value)

    @model_validator(mode="after")
    def _vertex_fields(self) -> Provider:
        if self.type == "vertex":
            if self.project is None or self.location is None:
                raise ValueError("a vertex provider needs 'project' and 'location'")
            if self.api_key is not None:
                raise ValueError("a vertex provider authenticates with 'credentials' (or ADC), not 'api_key'")
        elif self.project is not None or self.location is not None or self.credentials is not None:
            raise ValueError("'project', 'location' and 'credentials' are for providers of type vertex")
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


class PromptCache(_Model):
    """Automatic prompt-cache breakpoints for an Anthropic deployment (docs/caching.md).

    OpenAI and Gemini cache long prompt prefixes on their own; Anthropic caches only up to the
    ``cache_control`` breakpoints a request carries. With ``auto``, a request that carries none
    gets one at the end of its stable prefix (tools, then the system prompt) when that prefix is
    at least ``min_tokens`` long (estimated at 4 characters a token).
    """

    auto: bool = False
    #: Anthropic's minimum cacheable prefix is 1024 tokens (Sonnet 4.x), 2048 or 4096 for some
    #: models; a shorter prefix marked anyway is simply not cached (no error, no extra cost)
    min_tokens: int = Field(default=1024, ge=1)


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
    #: Anthropic deployments: add prompt-cache breakpoints to requests that have none
    prompt_cache: PromptCache | None = None
    #: OpenAI-wire deployments whose upstream serves OpenAI's legacy ``/v1/completions``: legacy
    #: completion requests go there as sent, instead of mapped onto chat (docs/api.md)
    legacy_completions: bool = False
    #: OpenAI-wire deployments whose upstream serves OpenAI's ``/v1/responses``: Responses API
    #: requests go there as sent (hosted tools, reasoning items...) instead of translated
    #: (docs/api.md); unset: on for OpenAI itself (host openai), off elsewhere
    responses_api: bool | None = None
    #: the date the upstream model is retired (the provider's deprecation notice): warned about at
    #: start-up and by check-config from 90 days ahead, and in /metrics (docs/migration.md)
    retires: date | None = None
    #: where the deployment processes data (``eu``, ``us``, ``eu-west-1``); unset: its provider's.
    #: Requests restricted to some regions go only to deployments in them (docs/configuration.md,
    #: "Data residency")
    region: str | None = Field(default=None, pattern=REGION)
    #: the provider's data-processing terms for this deployment, for humans (read in the config file; never enforced)
    data_terms: str | None = None
