"""A gateway with access control, a SQLite ledger and the mock provider, for the dashboard's tests."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import BreakwaterApp, create_app
from tests.server.running import serve

ADMIN = "adm-dashboard-5e1f"
ENVIRON = {"BW_ADMIN": ADMIN, "BW_HASH": "hash-secret-for-dashboard-tests-0123"}


LARGE_PRICE = {"input_per_mtok": "25", "output_per_mtok": "100"}
"""The price of the branching route's strong branch: ten times the other deployments'."""


def gateway_config(tmp: Path, *, admin: bool = True, access: bool = True) -> dict[str, Any]:
    """Two mock routes with a price (one capturing prompts and answers, with a drift watch), a
    route with two variants over them, a route mirrored to one of them, a branching route whose
    baseline is a dearer deployment, keys in SQLite, a SQLite ledger."""
    price = {"input_per_mtok": "2.5", "output_per_mtok": "10"}
    config: dict[str, Any] = {
        "access": {"store": f"sqlite:///{tmp}/keys.db", "hash_secret": "env:BW_HASH"} if access else {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"m": {"type": "mock"}},
        "deployments": {
            "d-fast": {"provider": "m", "model": "mock-gpt", "price": price},
            "d-smart": {"provider": "m", "model": "mock-gpt-large", "price": price},
            "d-large": {"provider": "m", "model": "mock-gpt-xl", "price": LARGE_PRICE},
        },
        "routes": {
            "fast": {
                "deployments": ["d-fast"],
                "capture": {"enabled": True},
                "drift": {"share": 1.0, "asserts": [{"type": "not-icontains", "value": "as an AI"}]},
            },
            "smart": {"deployments": ["d-smart"]},
            "mirrored": {"deployments": ["d-fast"], "shadow": {"route": "smart"}},
            "auto": {
                "branches": {"cheap": {"route": "fast"}, "strong": {"deployments": ["d-large"]}},
                "rules": [{"if": {"last_user_contains": ["prove"]}, "then": "strong"}],
                "default": "cheap",
                "baseline": "strong",
            },
            "canary": {
                "variants": {
                    "sticky": "user",
                    "arms": {"stable": {"route": "fast", "weight": 90}, "candidate": {"route": "smart", "weight": 10}},
                }
            },
        },
    }
    if admin:
        config["server"] = {"admin_key": "env:BW_ADMIN"}
    return config


@dataclass
class Gateway:
    url: str
    app: BreakwaterApp
    tmp: Path

    def client(self) -> httpx2.Client:
        """A plain HTTP client (no redirects followed) that keeps cookies, like a browser."""
        return httpx2.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def login(self) -> httpx2.Client:
        client = self.client()
        r = client.post("/ui/login", data={"admin_key": ADMIN})
        assert r.status_code == 303, r.text
        return client


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("ui")
    app = create_app(build_config(gateway_config(tmp)), environ=ENVIRON)
    with serve(app) as url:
        yield Gateway(url, app, tmp)


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: Playwright drives it as it is (``playwright install`` is never run)."""

SCREENSHOTS_ENV = "BREAKWATER_UI_SCREENSHOTS"
"""A directory to save the browser tests' screenshots in, besides ``tmp_path`` (``.ci/ui-screenshots``)."""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright; skipped (failed under BREAKWATER_REQUIRE_SERVICES=1) without one.

    Module-scoped: Playwright's sync API keeps an event loop running on this thread while it is
    open, which would stop every later asyncio test from running its own."""
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("BREAKWATER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; BREAKWATER_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A browser page whose console errors, page errors and dialogs are collected (a test asserts none)."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def shot(self, name: str) -> Path:
        """A screenshot of the viewport, kept under tmp_path (and in $BREAKWATER_UI_SCREENSHOTS when set)."""
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        target = os.environ.get(SCREENSHOTS_ENV)
        if target:
            shutil.copyfile(path, Path(target) / path.name)
        return path
