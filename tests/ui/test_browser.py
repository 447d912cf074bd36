"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a gateway on
loopback with the mock provider and a SQLite ledger, after traffic from the official OpenAI SDK.

Each test logs in through the form, uses the pages as a person would, and ends with no console
error, no page error and no dialog. Screenshots go to ``tmp_path`` (and to
``$BREAKWATER_UI_SCREENSHOTS`` when set: ``.ci/ui-screenshots`` refreshes docs/images/ with them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
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
    """A gateway whose ledger holds the SDK's requests: three users on two routes, one failure, one
    hostile, variants, and a team's key on a branching route (its cheap branch, then its strong one)."""
    tmp = tmp_path_factory.mktemp("ui-browser")
    app = create_app(build_config(gateway_config(tmp)), environ=ENVIRON)
    with serve(app) as url:
        admin = httpx2.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"})
        key = admin.post("/admin/keys", json={"name": "seed"}).json()["key"]
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
        for i in range(8):
            client.chat.completions.create(
                model="canary",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-breakwater-user": f"u{i}"},
            )
        ledger = app.ledger
        assert ledger is not None
        assert admin.post("/admin/teams", json={"name": "growth"}).status_code == 201
        team_key = admin.post("/admin/keys", json={"name": "growth-app", "team": "growth"}).json()["key"]
        team_client = openai_sdk(url, team_key)
        for text in ("hello", "hi again", "prove it"):
            team_client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])
        until(lambda: ledger.writer.pending == 0 and _rows(app) >= 25, 10, "the ledger has every row")
        yield Gateway(url, app, tmp)


def _rows(app: Any, where: str = "1 = 1") -> int:
    """The ledger's rows (that match ``where``), read from its SQLite file."""
    path = app.config.ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM breakwater_ledger WHERE {where}").fetchone()[0])


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
    page.wait_for_url("**/ui/keys?created=*")  # POST/redirect/GET
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


def test_reloading_the_key_created_page_makes_no_second_key_and_hides_the_secret(
    browser: Watched, traffic: Gateway
) -> None:
    """Reloading the page that showed a new key's secret creates nothing and shows a note instead of the secret."""
    page = browser.page
    page.goto("/ui/keys")
    form = page.locator("#create-key")
    form.get_by_label("Name", exact=True).fill("reloaded-once")
    form.get_by_role("button", name="Create key").click()
    page.wait_for_url("**/ui/keys?created=*")
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("bw-")
    page.reload()
    assert "created=" in page.url
    assert page.locator("#new-secret").count() == 0
    assert secret not in page.content()
    assert "not shown again" in page.locator("#secret-gone").inner_text()
    assert page.locator("#keys tr", has_text="reloaded-once").count() == 1
    admin = httpx2.Client(base_url=traffic.url, headers={"authorization": f"Bearer {ADMIN}"})
    assert [k["name"] for k in admin.get("/admin/keys").json()["data"]].count("reloaded-once") == 1


def test_overview_shows_the_traffic_in_tiles_and_charts(browser: Watched, traffic: Gateway) -> None:
    """The overview counts the ledger's requests and errors, draws its charts, and changes window on a click."""
    page = browser.page
    ledger = traffic.app.ledger
    assert ledger is not None
    until(lambda: ledger.writer.pending == 0 and not ledger.writer._writing, 10, "the ledger has written every row")
    page.reload()
    tiles = page.locator("#totals")
    rows, errors = _rows(traffic.app), _rows(traffic.app, "status >= 400")
    assert tiles.locator(".tile", has_text="Requests").locator("dd").inner_text() == str(rows)
    rate = f"{errors / rows * 100:.1f}%"
    assert tiles.locator(".tile", has_text="Error rate").locator("dd").inner_text() == rate
    saved = tiles.locator(".tile", has_text="Saved by routing").locator("dd").inner_text()
    assert saved.startswith("$") and saved != "$0"  # the branching route's cheap answers
    page.locator("#c-traffic canvas").wait_for()
    assert page.locator(".plot canvas").count() == 4  # no streams: the TTFT chart says so instead
    assert "No data" in page.locator("#c-ttft").inner_text()
    browser.shot("dashboard-overview")
    page.get_by_role("button", name="1h").click()
    page.wait_for_url("**/ui/?window=1h")
    assert page.get_by_role("button", name="1h").get_attribute("aria-pressed") == "true"
    page.locator("#c-latency canvas").wait_for()


def test_filters_change_the_requests_table(browser: Watched) -> None:
    """Filtering by user, then by status, narrows the table to the matching rows."""
    page = browser.page
    page.get_by_role("link", name="Requests").click()
    page.wait_for_url("**/ui/requests")
    everyone = page.locator("#requests tbody tr").count()
    assert everyone >= 14
    page.get_by_label("User").fill("alice")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/ui/requests?**user=alice**")
    users = page.locator("#requests td.user").all_inner_texts()
    assert users == ["alice"] * 4
    browser.shot("dashboard-requests")
    page.get_by_label("User").fill("")
    page.get_by_label("Status").select_option("error")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**status=error**")
    statuses = [int(s.split()[0]) for s in page.locator("#requests td.status").all_inner_texts()]
    assert statuses
    assert all(s >= 400 for s in statuses)
    assert any(s >= 500 for s in statuses)  # the failed upstream call
    page.get_by_label("Min latency (ms)").fill("abc")
    with page.expect_response("**/ui/requests?**") as bad:
        page.get_by_role("button", name="Search").click()
    assert bad.value.status == 400
    assert "min_latency_ms" in page.locator("main").inner_text()
    browser.problems = [p for p in browser.problems if "400" not in p]  # the refused search's own status


def test_a_request_s_detail_shows_its_attempts_cost_and_captured_text(browser: Watched) -> None:
    """A captured request's page shows the route, attempts, the cost split and the prompt and answer."""
    page = browser.page
    page.goto("/ui/requests?route=fast&user=alice")
    page.locator("#requests tbody tr a").first.click()
    page.wait_for_url("**/ui/request?id=**")
    text = page.locator("main").inner_text()
    assert "fast" in text
    assert "Attempts" in text
    assert "Output" in text
    assert "question" in page.locator("#detail-prompt").inner_text()
    assert page.locator("#detail-response").inner_text()
    browser.shot("dashboard-request")


def test_hostile_text_shows_as_text(browser: Watched, traffic: Gateway) -> None:
    """A prompt, user name and tag holding <script> and an onerror image are shown verbatim, never run."""
    page = browser.page
    page.goto("/ui/requests?route=fast")
    hostile = page.locator("#requests tr", has_text="<script>")
    assert hostile.locator("td.user").inner_text() == XSS
    hostile.locator("a").click()
    page.wait_for_url("**/ui/request?id=**")
    assert page.locator("#detail-user").inner_text() == XSS
    assert page.locator("#detail-tags").inner_text() == f"feature={XSS}"
    prompt = page.locator("#detail-prompt").inner_text()  # the captured messages, as JSON
    assert '<script>alert(\\"xss\\")</script><img src=x onerror=alert(1)>' in prompt
    assert page.locator("main script, main img").count() == 0
    # and the server sent it escaped
    client = traffic.login()
    html = client.get(page.url.removeprefix(traffic.url)).text
    assert XSS not in html
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_cost_by_user_and_team_with_a_csv_export(browser: Watched, traffic: Gateway) -> None:
    """The cost page ranks users by spend, charts the top ones, regroups by route, and exports the table as CSV."""
    page = browser.page
    page.get_by_role("link", name="Cost").click()
    page.wait_for_url("**/ui/cost")
    table = page.locator("#cost").inner_text()
    for user in USERS:
        assert user in table
    page.locator("#c-cost canvas").wait_for()
    browser.shot("dashboard-cost")
    page.get_by_label("Group by").select_option("route")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**by=route**")
    routes = page.locator("#cost tbody tr td:first-child").all_inner_texts()
    assert (
        {"fast", "smart", "canary", "auto"} <= set(routes) <= {"fast", "smart", "canary", "auto", "(none)"}
    )  # (none): refused before routing
    client = traffic.login()
    r = client.get("/ui/cost.csv?window=24h&by=user")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="breakwater-cost-by-user-24h.csv"' in r.headers["content-disposition"]
    lines = r.text.splitlines()
    assert lines[0].startswith("user,requests,")
    assert any(line.startswith("alice,4,") for line in lines)
    teams = client.get("/ui/cost?by=team")
    assert teams.status_code == 200
    assert "(no team)" in teams.text
    assert client.get("/ui/cost?by=tag").status_code == 400
    assert client.get("/ui/cost?by=tag&tag=feature").status_code == 200


def test_cost_shows_what_routing_saved_and_each_team_over_time(browser: Watched, traffic: Gateway) -> None:
    """The branching route's cheap answers saved what their tokens would have cost at its baseline:
    the tile, the route's row and the CSV say so; grouped by team, the table and the chart put the
    team key's spend under its team."""
    client = traffic.login()
    rows = client.get("/ui/cost.csv?window=24h&by=route").text.splitlines()
    header = rows[0].split(",")
    auto = dict(zip(header, next(r for r in rows if r.startswith("auto,")).split(","), strict=True))
    path = traffic.app.config.ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        cheap = db.execute(
            "SELECT SUM(input_tokens), SUM(output_tokens), COUNT(*) FROM breakwater_ledger WHERE branch = 'cheap'"
        ).fetchone()
    assert cheap[2] == 2  # the strong branch is the baseline: it saved nothing
    dearer = (Decimal(25) - Decimal("2.5")) * cheap[0] + (Decimal(100) - Decimal(10)) * cheap[1]
    assert Decimal(auto["routing_saved_usd"]) == dearer / 1_000_000 > 0
    page = browser.page
    page.goto("/ui/cost?window=24h&by=team")
    saved = page.locator(".tile", has_text="Saved by routing").locator("dd").inner_text()
    assert saved.startswith("$") and saved != "$0"
    table = page.locator("#cost").inner_text()
    assert "growth" in table and "(no team)" in table
    page.locator("#c-cost canvas").wait_for()
    chart = client.get("/ui/api/cost?window=24h&by=team").json()
    labels = [c["label"] for c in chart["charts"]["cost"]]
    assert set(labels) == {"growth", "(no team)"}
    growth = next(c for c in chart["charts"]["cost"] if c["label"] == "growth")
    with sqlite3.connect(path) as db:
        spent = db.execute("SELECT SUM(CAST(cost_usd AS REAL)) FROM breakwater_ledger WHERE route = 'auto'").fetchone()
    assert sum(growth["values"]) == pytest.approx(spent[0])
    browser.shot("dashboard-cost-teams")
    with sqlite3.connect(path) as db:
        (request_id,) = db.execute("SELECT request_id FROM breakwater_ledger WHERE branch = 'cheap'").fetchone()
    page.goto(f"/ui/request?id={request_id}")
    assert "saved by routing $" in page.locator("main").inner_text()


def test_reliability_shows_each_deployment_s_breaker_and_errors(browser: Watched) -> None:
    """Each deployment used has its breaker state, request count, error classes and percentiles."""
    page = browser.page
    page.get_by_role("link", name="Reliability").click()
    page.wait_for_url("**/ui/reliability")
    smart = page.locator('#reliability tr[data-deployment="d-smart"]')
    assert smart.locator(".breaker").inner_text().startswith(("closed", "open", "half open"))
    assert "ms" in smart.inner_text()
    fast = page.locator('#reliability tr[data-deployment="d-fast"]')
    assert "0.0%" in fast.inner_text()
    assert page.locator("#reliability").inner_text().count("d-") >= 2
    browser.shot("dashboard-reliability")


def test_limits_show_budget_use_and_the_alerts_fired(browser: Watched, traffic: Gateway) -> None:
    """A team's budget shows what its key spent against the cap, and the crossing's alert is listed."""
    admin = httpx2.Client(base_url=traffic.url, headers={"authorization": f"Bearer {ADMIN}"})
    created = admin.post(
        "/admin/teams", json={"name": "research", "limits": {"budget": {"usd": "0.0004", "period": "day"}}}
    )
    assert created.status_code == 201, created.text
    key = admin.post("/admin/keys", json={"name": "researcher", "team": "research", "limits": {"rpm": 50}}).json()[
        "key"
    ]
    openai_sdk(traffic.url, key).chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    page = browser.page
    page.get_by_role("link", name="Limits").click()
    page.wait_for_url("**/ui/limits")
    row = page.locator("table.budgets tr", has_text="research")
    assert "$0.0004" in row.inner_text()
    assert float(row.get_by_role("meter").get_attribute("aria-valuenow") or 0) > 0
    assert "50" in page.locator("#limits tr", has_text="researcher").inner_text()
    used = page.locator("#usage tr", has_text="researcher").locator("td").all_inner_texts()
    assert used[2:5] == ["requests / min", "1", "50"]  # the request above, within the last minute
    assert "research" in page.locator("#alerts").inner_text()
    browser.shot("dashboard-limits")


def test_rollouts_compare_the_variants_and_quality_shows_the_drift_watch(browser: Watched) -> None:
    """The canary route lists both arms with their requests; the watched route's drift score is shown."""
    page = browser.page
    page.get_by_role("link", name="Rollouts").click()
    page.wait_for_url("**/ui/rollouts")
    section = page.locator("section.rollout", has_text="Route canary")
    arms = section.locator("table.variants tbody tr")
    assert arms.count() == 2
    counts = [int(t) for t in section.locator("table.variants tbody td:nth-child(4)").all_inner_texts()]
    assert sum(counts) == 8
    browser.shot("dashboard-rollouts")
    page.get_by_role("link", name="Quality").click()
    page.wait_for_url("**/ui/quality")
    assert "fast" in page.locator("#drift").inner_text()
    page.locator("#c-drift canvas, #c-drift .empty").first.wait_for()


def test_rollouts_show_a_shadow_s_pairs_and_agreement(browser: Watched, traffic: Gateway) -> None:
    """Requests to a mirrored route and their candidate calls are paired on the rollouts page."""
    admin = httpx2.Client(base_url=traffic.url, headers={"authorization": f"Bearer {ADMIN}"})
    key = admin.post("/admin/keys", json={"name": "mirror"}).json()["key"]
    for i in range(3):
        openai_sdk(traffic.url, key).chat.completions.create(
            model="mirrored", messages=[{"role": "user", "content": f"mirror {i}"}]
        )
    ledger = traffic.app.ledger
    assert ledger is not None
    until(
        lambda: ledger.writer.pending == 0 and _rows(traffic.app, "shadow_of IS NOT NULL") >= 3,
        10,
        "the candidate calls are in the ledger",
    )
    page = browser.page
    page.goto("/ui/rollouts")
    section = page.locator("section.rollout", has_text="Route mirrored")
    cells = section.locator("table.shadow tbody td").all_inner_texts()
    assert cells[0] == "3" and cells[1].startswith("0")
    assert cells[2] != "—"  # the mock's answers were compared exactly
    browser.shot("dashboard-rollouts-shadow")
