"""The dashboard's pages, one module per section, each with its ``ROUTES``."""

from __future__ import annotations

from breakwater.server.ui.pages import cost, keys, limits, overview, reliability, requests, rollouts
from breakwater.server.ui.view import PageHandler

#: the sections in the navigation bar: (path, label)
NAV: list[tuple[str, str]] = [
    ("/ui/", "Overview"),
    ("/ui/cost", "Cost"),
    ("/ui/reliability", "Reliability"),
    ("/ui/limits", "Limits"),
    ("/ui/rollouts", "Rollouts"),
    ("/ui/quality", "Quality"),
    ("/ui/requests", "Requests"),
    ("/ui/keys", "Keys"),
]


def routes() -> dict[tuple[str, str], PageHandler]:
    """Every page: ``(method, path)`` -> handler."""
    table: dict[tuple[str, str], PageHandler] = {}
    for module in (overview, cost, reliability, limits, rollouts, requests, keys):
        table.update(module.ROUTES)
    return table
