"""The ``ledger``, ``tracing`` and ``alerts`` sections, and a route's prompt ``capture``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from breakwater.core.config.base import _database_url, _Model


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


class CaptureSettings(_Model):
    """Store prompts and answers (redacted) in the ledger for a sample of a route's requests."""

    enabled: bool = False
    sample_rate: float = Field(default=1.0, gt=0, le=1)
    max_chars: int = Field(default=20_000, ge=1)


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


class PromptCacheDropRule(_Model):
    #: fire when a route's share of input tokens read from the provider's prompt cache falls
    #: below this fraction of its share in the window before (0.5: halved)
    drop: float = Field(default=0.5, gt=0, lt=1)
    #: ... and only for a route that had at least this share before (a cache worth watching)
    min_baseline: float = Field(default=0.2, gt=0, le=1)
    window_s: float = Field(default=900.0, gt=0)
    min_requests: int = Field(default=20, ge=1)


class AlertSettings(_Model):
    """Alert rules (each off unless given) and where alerts go besides the log."""

    #: a URL, or ``env:NAME`` / ``file:/path`` when the URL carries a token (Slack, PagerDuty)
    webhook: str | None = None
    interval_s: float = Field(default=60.0, gt=0)
    spend_outlier: SpendOutlierRule | None = None
    length_share: LengthShareRule | None = None
    error_rate: ErrorRateRule | None = None
    p95_latency: P95LatencyRule | None = None
    prompt_cache_drop: PromptCacheDropRule | None = None
