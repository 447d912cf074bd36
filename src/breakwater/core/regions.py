"""Data residency: the regions a request's traffic may go to, and whether a deployment is in them.

A region is a free lower-case string (``eu``, ``us``, ``eu-west-1``). A restriction is a set of
regions; ``None`` means no restriction. An allowed region covers itself and every region under it
by dash-separated prefix: ``eu`` allows ``eu-west-1`` and ``eu-central``; ``eu-west-1`` does not
allow ``eu``. A deployment with no region is outside every restriction (it is never chosen for a
restricted request): residency fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable

#: a region as the config spells it: lower-case words joined by dashes
PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"

#: the regions a request may go to; ``None``: anywhere
Regions = frozenset[str] | None


def covers(allowed: str, region: str) -> bool:
    """``allowed`` is ``region`` or a prefix of it on a ``-`` boundary."""
    return region == allowed or region.startswith(allowed + "-")


def allows(allowed: Regions, region: str | None) -> bool:
    """A deployment in ``region`` may receive traffic restricted to ``allowed``."""
    if allowed is None:
        return True
    return region is not None and any(covers(a, region) for a in allowed)


def narrow(*restrictions: Regions | Iterable[str]) -> Regions:
    """The regions every restriction allows (``None``: no restriction).

    Two restrictions meet at the narrower of two related regions (``eu`` and ``eu-west-1`` give
    ``eu-west-1``); unrelated regions drop out, and an empty result allows nothing.
    """
    result: Regions = None
    for restriction in restrictions:
        if restriction is None:
            continue
        mine = frozenset(restriction)
        if result is None:
            result = mine
            continue
        met = {b for a in result for b in mine if covers(a, b)}
        met |= {a for a in result for b in mine if covers(b, a)}
        result = frozenset(met)
    return result


def describe(allowed: Regions) -> str:
    """``eu, eu-west-1`` (sorted), or ``none`` for an empty restriction."""
    if allowed is None:
        return "any"
    return ", ".join(sorted(allowed)) or "none"
