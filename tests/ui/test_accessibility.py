"""The dashboard's accessibility in a real headless Chromium: axe-core (the rules of WCAG 2.1 A
and AA: labels, contrast, names, structure) finds nothing on any page, and a person with only a
keyboard can log in, move through the sections and act on a form.

axe-core comes bundled in the ``axe-playwright-python`` wheel (no download at run time); the
pages are checked with data in them (a few requests from the official SDK), so tables, tiles and
charts are what axe sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.polling import until
from tests.server.running import openai_sdk, serve
from tests.ui.conftest import ADMIN, ENVIRON, Gateway, Watched, gateway_config

#: the WCAG levels checked (axe's tags)
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose ledger holds a few requests on each kind of route, one of them failed."""
    tmp = tmp_path_factory.mktemp("ui-a11y")
    app = create_app(build_config(gateway_config(tmp)), environ=ENVIRON)
    with serve(app) as url:
        admin = httpx2.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"})
        client = openai_sdk(url, admin.post("/admin/keys", json={"name": "seed"}).json()["key"])
        for model in ("fast", "smart", "auto", "canary", "mirrored"):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"hello {model}"}])
        with pytest.raises(openai.InternalServerError):
            client.with_options(max_retries=0).chat.completions.create(
                model="smart", messages=[{"role": "user", "content": "x"}], extra_headers={"x-mock-fault": "status=500"}
            )
        ledger = app.ledger
        assert ledger is not None
        until(lambda: ledger.writer.pending == 0, 10, "the ledger has every row")
        yield Gateway(url, app, tmp)


def _violations(page: Any) -> list[str]:
    """What axe-core finds on the page, one line per rule broken (with the elements)."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}, "resultTypes": ["violations"]})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in found.response["violations"]
    ]


@pytest.fixture
def page(chromium: Any, served: Gateway) -> Iterator[Watched]:
    # bypass_csp: axe is injected as a script, which the dashboard's own CSP would refuse
    context = chromium.new_context(base_url=served.url, viewport={"width": 1280, "height": 860}, bypass_csp=True)
    watched = Watched(context.new_page(), served.tmp)
    yield watched
    context.close()
    assert watched.problems == []


def _login(page: Any) -> None:
    page.goto("/ui/login")
    page.get_by_label("Admin key").fill(ADMIN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/")


PAGES = [
    "/ui/",
    "/ui/cost?window=24h",
    "/ui/cost?window=24h&by=team",
    "/ui/reliability",
    "/ui/limits",
    "/ui/rollouts",
    "/ui/quality",
    "/ui/requests",
    "/ui/keys",
]


def test_axe_finds_nothing_on_any_page(page: Watched) -> None:
    """The login page, every section (charts drawn) and a request's detail break no WCAG 2.1 A/AA rule."""
    p = page.page
    p.goto("/ui/login")
    broken = {"/ui/login": _violations(p)}
    _login(p)
    for path in PAGES:
        p.goto(path)
        p.wait_for_load_state("networkidle")  # the charts' data fetched and drawn
        broken[path] = _violations(p)
    p.goto("/ui/requests?route=fast")
    p.locator("#requests tbody tr a").first.click()
    p.wait_for_url("**/ui/request?id=**")
    broken["a request"] = _violations(p)
    assert {path: found for path, found in broken.items() if found} == {}


def test_axe_finds_nothing_on_the_key_created_page_and_its_reload(page: Watched) -> None:
    """The page showing a new key's secret, and the note its reload shows instead, break no WCAG 2.1 A/AA rule."""
    p = page.page
    _login(p)
    p.goto("/ui/keys")
    p.locator("#create-key").get_by_label("Name", exact=True).fill("a11y")
    p.locator("#create-key").get_by_role("button", name="Create key").click()
    p.wait_for_url("**/ui/keys?created=*")
    assert p.locator("#new-secret").count() == 1
    broken = {"created": _violations(p)}
    p.reload()
    assert p.locator("#secret-gone").count() == 1
    broken["reloaded"] = _violations(p)
    assert {name: found for name, found in broken.items() if found} == {}


def test_a_keyboard_alone_logs_in_moves_between_sections_and_submits(page: Watched) -> None:
    """Tab reaches the key field and the button; Enter logs in; every section's link is reached
    by Tab, in order, with a visible focus; a filter form is filled and sent from the keyboard."""
    p = page.page
    p.goto("/ui/login")
    p.keyboard.press("Tab")
    for _ in range(5):
        if p.evaluate("document.activeElement.name") == "admin_key":
            break
        p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.name") == "admin_key"
    p.keyboard.type(ADMIN)
    p.keyboard.press("Enter")
    p.wait_for_url("**/ui/")
    reached: list[str] = []
    for _ in range(40):
        p.keyboard.press("Tab")
        focused = p.evaluate(
            "(() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return [e.tagName, e.getAttribute('href') || '', s.outlineStyle !== 'none' && s.outlineWidth !== '0px'"
            " || s.boxShadow !== 'none']; })()"
        )
        tag, href, visible = focused
        if tag == "A" and href.startswith("/ui/") and href not in reached:
            assert visible, f"the focus on {href} cannot be seen"
            reached.append(href)
    sections = ["/ui/", "/ui/cost", "/ui/reliability", "/ui/limits", "/ui/rollouts", "/ui/quality", "/ui/requests",
                "/ui/keys"]  # fmt: skip
    assert [h for h in reached if h in sections] == sections
    p.goto("/ui/cost?window=24h")
    p.get_by_label("Group by").focus()
    p.keyboard.press("End")  # the last grouping, by tag
    p.keyboard.press("Tab")
    p.keyboard.type("feature")
    p.keyboard.press("Enter")
    p.wait_for_url("**by=tag**")
    assert "tag=feature" in p.url


def test_the_pages_read_without_javascript(chromium: Any, served: Gateway) -> None:
    """With JavaScript off, the login form works and each page still shows its tiles and tables;
    a chart says where its figures are instead."""
    context = chromium.new_context(base_url=served.url, java_script_enabled=False)
    try:
        p = context.new_page()
        _login(p)
        assert p.locator(".tile").count() > 0
        assert "drawn with JavaScript" in p.locator("figure.chart").first.inner_text()
        p.goto("/ui/cost?window=24h&by=route")
        assert "fast" in p.locator("#cost").inner_text()
        p.goto("/ui/requests")
        assert p.locator("#requests tbody tr").count() >= 5
    finally:
        context.close()
