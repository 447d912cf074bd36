"""The ``access`` and ``limits`` sections: virtual keys, sessions, budget alerts, and where
limit and budget counters live."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from breakwater.core.config.base import _database_url, _Model, _secret_reference


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
