"""The rate and concurrency limits' live use, for the dashboard: read, never counted.

Each scope's requests and tokens in the last minute (the 60 one-second slots its ``rpm`` and
``tpm`` windows admit against, ``engine/limits/quota.py``) and its requests in flight (the live
tokens of its ``max_concurrent`` lease set), as the counters backend holds them: shared by every
replica on Redis, this process's own on memory. One backend call per kind, off the request path.
"""

from __future__ import annotations

from collections.abc import Sequence

from breakwater.engine.limits.checks import Scope
from breakwater.engine.limits.counters import Window
from breakwater.engine.ports import Counters

#: the per-minute windows' slots (one second each), as ``Quota.admit`` counts them
MINUTE = 60


async def read_limits(counters: Counters, scopes: Sequence[Scope], now: float) -> list[dict[str, object]]:
    """Per scope and limit it has (``rpm``, ``tpm``, ``concurrent``): ``scope``, ``subject``,
    ``limit`` (the kind), ``cap``, ``used`` and ``used_share``."""
    rows: list[dict[str, object]] = []
    windows: list[Window] = []
    leases: list[str] = []
    for scope in scopes:
        base = f"{scope.kind}:{scope.subject}"
        caps = (("rpm", scope.limits.rpm), ("tpm", scope.limits.tpm), ("concurrent", scope.limits.max_concurrent))
        for kind, cap in caps:
            if cap is None:
                continue
            rows.append({"scope": scope.kind, "subject": scope.subject, "limit": kind, "cap": cap})
            if kind == "concurrent":
                leases.append(f"conc:{base}")
            else:
                windows.append(Window(f"{kind}:{base}", cap, 0, int(now), MINUTE))
    readings = iter(await counters.read(windows, now) if windows else [])
    held = iter(await counters.held(leases, now) if leases else [])
    for row in rows:
        used = next(held) if row["limit"] == "concurrent" else next(readings).count
        limit = row["cap"]
        assert isinstance(limit, int)
        row["used"] = used
        row["used_share"] = used / limit if limit else 0.0
    return rows
