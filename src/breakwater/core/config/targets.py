"""Where a route or one of its branches sends requests: deployments (with weights), or another
route (``Branch``). Shared by ``routes`` and ``variants``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from breakwater.core.config.base import _Model


class RouteTarget(_Model):
    deployment: str
    weight: float = Field(default=1.0, gt=0)


class Branch(_Model):
    """Where a branch sends its requests: another route, or deployments of its own."""

    route: str | None = None
    deployments: list[RouteTarget] = Field(default_factory=list)

    @field_validator("deployments", mode="before")
    @classmethod
    def _names_allowed(cls, value: Any) -> Any:
        return _targets(value)

    @model_validator(mode="after")
    def _one_target(self) -> Branch:
        if (self.route is None) == (not self.deployments):
            raise ValueError("a branch names either a route or its deployments, not both nor neither")
        return self


def _targets(value: Any) -> Any:
    """Deployments may be listed by name alone."""
    if isinstance(value, list):
        return [{"deployment": v} if isinstance(v, str) else v for v in value]
    return value
