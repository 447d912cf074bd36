"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a gateway on
loopback with the mock provider and a SQLite ledger, after traffic from the official OpenAI SDK.

Each test logs in through the form, uses the pages as a person would, and ends with no console
error, no page error and no dialog. Screenshots go to ``tmp_path`` (and to
``$BREAKWATER_UI_SCREENSHOTS`` when set: ``.ci/ui-screenshots`` refreshes docs/images/ with them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.polling import until
from tests.server.running import openai_sdk, serve
from tests.ui.conftest import ADMIN, ENVIRON, Gateway, Watched, gateway_config

XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
"""A prompt, a user name and a tag value that must show as text."""

USERS = ["alice", "bob", "carol"]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose ledger holds the SDK's requests: three users on two routes, one failure, one hostile."""
    tmp = tmp_path_factory.mktemp("ui-browser")
    app = create_app(build_config(gateway_config(tmp)), environ=ENVIRON)
    with serve(app) as url:
        admin = httpx2.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"})
        key = admin.post("/admin/keys", json={"name": "seed", "user": "seeder"}).json()["key"]
        client = openai_sdk(url, key)
        for i in range(12):
            user = USERS[i % 3]
            client.chat.completions.create(
                model="fast" if i % 2 else "smart",
                messages=[{"role": "user", "content": f"question {i} from {user}"}],
                extra_headers={"x-breakwater-user": user, "x-breakwater-tags": f"feature=search{i % 2}"},
            )
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="smart",
                messages=[{"role": "user", "content": "fail"}],
                extra_headers={"x-mock-fault": "status=500"},
            )
        client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": XSS}],
            extra_headers={"x-breakwater-user": XSS, "x-breakwater-tags": f"feature={XSS}"},
        )
        ledger = app.ledger
        assert ledger is not None
        until(lambda: ledger.writer.pending == 0 and _rows(app) >= 14, 10, "the ledger has every row")
        yield Gateway(url, app, tmp)


def _rows(app: Any) -> int:
    import sqlite3

    path = app.config.ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM breakwater_ledger").fetchone()[0])


@pytest.fixture
def browser(chromium: Any, traffic: Gateway, tmp_path: Path) -> Iterator[Watched]:
    """A logged-in page on the gateway; the test fails if the page logged an error or opened a dialog."""
    context = chromium.new_context(base_url=traffic.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    watched = Watched(page, tmp_path)
    page.goto("/ui/login")
    page.get_by_label("Admin key").fill(ADMIN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/")
    yield watched
    context.close()
    assert watched.problems == []
    assert watched.dialogs == []


def test_login_page_and_logout(chromium: Any, traffic: Gateway, tmp_path: Path) -> None:
    """The login form refuses a wrong key, lets the admin key in, and logging out returns to it."""
    context = chromium.new_context(base_url=traffic.url)
    page = context.new_page()
    watched = Watched(page, tmp_path)
    page.goto("/ui/keys")
    assert page.url.endswith("/ui/login?next=/ui/keys")
    watched.shot("dashboard-login")
    page.get_by_label("Admin key").fill("not-the-key")
    with page.expect_response("**/ui/login") as refused:
        page.get_by_role("button", name="Log in").click()
    assert refused.value.status == 401
    assert "admin key" in page.locator("#login-error").inner_text()
    watched.problems = [p for p in watched.problems if "401" not in p]  # the refused login's own status
    page.get_by_label("Admin key").fill(ADMIN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/keys")
    cookie = next(c for c in context.cookies() if c["name"] == "bw_ui")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # out of the page's scripts' reach
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/ui/login")
    page.goto("/ui/")
    assert "/ui/login" in page.url
    context.close()
    assert watched.problems == []


def test_a_key_created_in_the_dashboard_works_and_can_be_disabled(browser: Watched, traffic: Gateway) -> None:
    """A key made with the form is shown once, answers through the OpenAI SDK, and stops once disabled."""
    page = browser.page
    page.get_by_role("link", name="Keys").click()
    page.wait_for_url("**/ui/keys")
    form = page.locator("#create-key")
    form.get_by_label("Name", exact=True).fill("from-the-dashboard")
    form.get_by_label("User", exact=True).fill("dana")
    form.get_by_label("Requests / minute").fill("100")
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("bw-")
    browser.shot("dashboard-keys")
    answer = openai_sdk(traffic.url, secret).chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    page.goto("/ui/keys")
    assert secret not in page.content()  # shown once
    row = page.locator("#keys tr", has_text="from-the-dashboard")
    row.get_by_role("button", name="Disable").click()
    page.wait_for_url("**/ui/keys")
    assert page.locator("#keys tr", has_text="from-the-dashboard").locator(".status").inner_text() == "disabled"
    with pytest.raises(openai.AuthenticationError):
        openai_sdk(traffic.url, secret).chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}]
        )
    assert "dashboard (127.0.0.1)" in page.locator("#audit").inner_text()


def test_overview_shows_the_traffic_in_tiles_and_charts(browser: Watched) -> None:
    """The overview counts the SDK's 14 requests, draws its charts, and changes window on a click."""
    page = browser.page
    tiles = page.locator("#totals")
    assert "14" in tiles.locator(".tile", has_text="Requests").inner_text()
    assert "7.1%" in tiles.locator(".tile", has_text="Error rate").inner_text()  # 1 of 14
    page.locator("#c-traffic canvas").wait_for()
    assert page.locator(".plot canvas").count() == 4  # no streams: the TTFT chart says so instead
    assert "No data" in page.locator("#c-ttft").inner_text()
    browser.shot("dashboard-overview")
    page.get_by_role("button", name="1h").click()
    page.wait_for_url("**/ui/?window=1h")
    assert page.get_by_role("button", name="1h").get_attribute("aria-pressed") == "true"
    page.locator("#c-latency canvas").wait_for()
