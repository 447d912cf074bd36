"""What a reload keeps: the long-lived services whose config sections did not change, and the
deployments configured the same way (their breakers and statistics carry over)."""

from __future__ import annotations

from breakwater.core.config import Config

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


def kept_services(old: Config, new: Config) -> list[str]:
    """The services (``SECTIONS`` names) a runtime built for ``new`` takes over from one for ``old``."""
    return [name for name, parts in SECTIONS.items() if all(getattr(old, s) == getattr(new, s) for s in parts)]


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
