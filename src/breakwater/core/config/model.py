"""``Config``: the whole file, one field per top-level section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from breakwater.core.config.access import AccessSettings, LimitsSettings
from breakwater.core.config.base import _Model
from breakwater.core.config.batches import BatchSettings
from breakwater.core.config.cache import CacheSettings
from breakwater.core.config.observability import AlertSettings, LedgerSettings, TracingSettings
from breakwater.core.config.prompts import Prompt
from breakwater.core.config.providers import Deployment, Provider
from breakwater.core.config.refusals import RefusalSettings
from breakwater.core.config.responses import ResponsesSettings
from breakwater.core.config.routes import Route
from breakwater.core.config.server import RedisSettings, ServerSettings


class Config(_Model):
    version: Literal[1] = 1
    server: ServerSettings = Field(default_factory=ServerSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    redis: RedisSettings | None = None
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    refusals: RefusalSettings = Field(default_factory=RefusalSettings)
    responses: ResponsesSettings = Field(default_factory=ResponsesSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    providers: dict[str, Provider] = Field(default_factory=dict)
    deployments: dict[str, Deployment] = Field(default_factory=dict)
    routes: dict[str, Route] = Field(default_factory=dict)
    prompts: dict[str, Prompt] = Field(default_factory=dict)
