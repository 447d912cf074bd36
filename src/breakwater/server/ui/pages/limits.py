"""Limits and budgets: every budget against its cap this period (the limiter's own counters,
``admin_keys.budgets``), every rate and concurrency limit against its use in the last minute and
in flight (``admin_keys.limit_usage``, the same counters), the limits set on keys, teams, users and tags, and the alerts this
process fired (``AlertTask.recent``, ``AlertOutbox.recent``: budget crossings and alert rules)."""

from __future__ import annotations

from typing import Any

from breakwater.server.admin_keys import budgets, limit_usage
from breakwater.server.ui.view import Page, PageHandler, Reply, View


async def limits_page(view: View) -> Reply:
    access = view.runtime.access
    admin = access.admin
    limits: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    if admin is not None:
        for k in await admin.keys():
            labels[k.id] = f"{k.prefix} {k.name}".strip()
            if k.revoked_at is None and k.limits.to_json():
                limits.append({"scope": "key", "subject": f"{k.prefix} {k.name}".strip(), "limits": k.limits.to_json()})
        for t in await admin.teams():
            if t.limits.to_json():
                limits.append({"scope": "team", "subject": t.name, "limits": t.limits.to_json()})
        limits += [e.public() for e in await admin.subject_limits()]
    alerts = list(view.runtime.outbox.recent)
    if view.runtime.alerts is not None:
        alerts += view.runtime.alerts.recent
    alerts.sort(key=lambda a: -a.at)
    context = {
        "enabled": admin is not None,
        "budgets": await budgets(admin, access.quota),
        "usage": [
            {**u, "subject": labels.get(str(u["subject"]), u["subject"]) if u["scope"] == "key" else u["subject"]}
            for u in await limit_usage(admin, access.quota)
        ],
        "limits": limits,
        "alerts": [a.to_json() for a in alerts],
    }
    return Page("limits.html", context)


ROUTES: dict[tuple[str, str], PageHandler] = {("GET", "/ui/limits"): limits_page}
