"""Overview: traffic, errors, latency, spend and savings over a window."""

from __future__ import annotations

from breakwater.server.ui.view import Page, PageHandler, Reply, View


async def overview(view: View) -> Reply:
    name = view.window()[0]
    return Page("overview.html", {"window": name})


ROUTES: dict[tuple[str, str], PageHandler] = {("GET", "/ui/"): overview}
