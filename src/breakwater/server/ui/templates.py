"""The dashboard's HTML templates (Jinja2, autoescaped) and the filters they format figures with."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import jinja2


def templates() -> jinja2.Environment:
    """The template environment: every ``{{ value }}`` is HTML-escaped; a field a row lacks renders empty."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("breakwater.server.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=usd, ms=ms, when=when, pct=pct, num=num)
    return env


def usd(value: Any) -> str:
    """``$12.34`` (``-$12.34``); small amounts keep four significant digits (``$0.0001234``); ``—`` for none."""
    if _absent(value) or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return "—"
    if amount == 0:
        return "$0"
    sign, amount = ("-" if amount < 0 else ""), abs(amount)
    if amount >= 1:
        return f"{sign}${amount:,.2f}"
    return f"{sign}${float(amount):.4g}"


def ms(value: Any) -> str:
    """``123 ms`` or ``1.23 s``; ``—`` for none."""
    if _absent(value):
        return "—"
    v = float(value)
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def when(ts: Any) -> str:
    """Unix seconds as ``2026-01-02 13:04:05Z`` (UTC); ``—`` for none."""
    if _absent(ts):
        return "—"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def pct(value: Any) -> str:
    """A share in [0, 1] as ``12.3%``; ``—`` for none."""
    if _absent(value):
        return "—"
    return f"{float(value) * 100:.1f}%"


def num(value: Any) -> str:
    """An integer with thousands separators; ``—`` for none."""
    if _absent(value):
        return "—"
    return f"{int(value):,}"


def _absent(value: Any) -> bool:
    """No value: ``None``, or a field the row does not have."""
    return value is None or isinstance(value, jinja2.Undefined)
