"""What a dashboard page gets (``View``) and gives back (``Page``, ``Redirect``, ``Download``).

A page is an async function ``(View) -> Reply``. It reads the running configuration's parts
through ``view.runtime`` and the request's parameters through ``view.query`` / ``view.form``; it
never writes to the ASGI channel itself (``dashboard.Dashboard`` renders the reply).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from breakwater.core.errors import InvalidRequest
from breakwater.runtime.runtime import Runtime
from breakwater.server.ui.reveal import Reveals
from breakwater.server.ui.session import Session
from breakwater.server.ui.web import Request

#: the windows every time-based page offers: name -> (seconds, chart step in seconds)
WINDOWS: dict[str, tuple[float, float]] = {
    "1h": (3600.0, 60.0),
    "24h": (86400.0, 900.0),
    "7d": (7 * 86400.0, 3 * 3600.0),
    "30d": (30 * 86400.0, 12 * 3600.0),
}
DEFAULT_WINDOW = "24h"


@dataclass(slots=True)
class View:
    """One page request: the runtime it reads, the request, the session, the one-time slots a
    page shows a new secret through (``reveal.py``), and the form (POST)."""

    runtime: Runtime
    request: Request
    session: Session
    now: float
    open_mode: bool
    reveals: Reveals
    form: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        return self.request.query

    @property
    def actor(self) -> str:
        """Who the audit trail names for a change made here."""
        return f"dashboard ({self.request.client})"

    def window(self) -> tuple[str, float, float, float]:
        """The window the page shows: ``(name, since, until, step_s)`` from ``?window=`` (default 24h)."""
        name = self.query.get("window", DEFAULT_WINDOW)
        if name not in WINDOWS:
            raise InvalidRequest(f"Unknown window {name!r}: one of {', '.join(WINDOWS)}", param="window")
        span, step = WINDOWS[name]
        # buckets end on a step boundary so a reload of the page keeps the same buckets
        until = (self.now // step + 1) * step
        return name, until - span, until, step


@dataclass(frozen=True, slots=True)
class Page:
    """Render ``template`` with ``context`` (the layout adds the session, the nav and the warning)."""

    template: str
    context: dict[str, Any]
    status: int = 200


@dataclass(frozen=True, slots=True)
class Redirect:
    """303 to a dashboard path (after a form)."""

    location: str


@dataclass(frozen=True, slots=True)
class Download:
    """A body that is not a page: JSON for the charts, CSV exports."""

    body: bytes
    content_type: bytes
    filename: str | None = None


Reply = Page | Redirect | Download
PageHandler = Callable[[View], Awaitable[Reply]]
