"""Fuzzing the dashboard: whatever the path, method, query, form or cookie, never a 5xx and never
a traceback; an error on a JSON endpoint (``/ui/api/*``) is JSON.

Every page and action (``pages.routes()``), the login and logout forms, the static files and
paths that are none of these get drawn query strings (the pages' own parameters with odd values:
unknown windows, huge and non-finite numbers, bad dates, control characters, long text) and form
bodies (the forms' own fields, with the session's CSRF token or a wrong one), as a logged-in
browser and as a stranger. Examples are derandomized: every run sends the same requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from breakwater.server.ui import pages
from tests.ui.conftest import Gateway, csrf_of

PATHS = sorted({path for _, path in pages.routes()} | {"/ui", "/ui/login", "/ui/logout", "/ui/static/uPlot.min.css"})
#: each page and action as it is meant to be reached, the login and logout forms, a static file
ROUTES = [*sorted(pages.routes()), ("GET", "/ui/login"), ("POST", "/ui/login"), ("POST", "/ui/logout"),
          ("GET", "/ui/static/uPlot.min.css")]  # fmt: skip
#: the parameters the pages read, and the form fields the actions read
PARAMS = ["window", "by", "tag", "since", "until", "route", "user", "key_id", "status", "model", "min_cost_usd",
          "min_latency_ms", "cursor", "id", "created", "next", "series"]  # fmt: skip
FIELDS = ["name", "user", "team", "routes", "tags", "expires_in_days", "key_id", "action", "overlap_s", "rpm", "tpm",
          "max_concurrent", "budget_usd", "period", "admin_key", "next"]  # fmt: skip
ODD = st.sampled_from(
    ["", "1h", "24h", "7d", "30d", "2y", "user", "team", "tag", "key", "nan", "inf", "-inf", "-1", "0", "1e309",
     "99999999999999999999999", "2026-13-45", "2026-12-06T25:00", "yesterday", "disable", "enable", "rotate",
     "\x00", "\u202e", "<script>", "'; DROP TABLE x; --", "../../etc/passwd", "%ff", "k" * 3000, "ok", "error",
     "5xx", "429", "mock-gpt", "fast", "1.5", "0.000001"]
)  # fmt: skip
VALUES = ODD | st.text(max_size=40)


@pytest.fixture(scope="module")
def clients(gateway: Gateway) -> Iterator[tuple[httpx2.Client, httpx2.Client, str]]:
    """A logged-in client and its CSRF token, and a stranger without a session."""
    signed_in = gateway.login()
    token = csrf_of(signed_in.get("/ui/keys").text)
    stranger = gateway.client()
    yield signed_in, stranger, token
    signed_in.close()
    stranger.close()


@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_input_makes_the_dashboard_fail(
    clients: tuple[httpx2.Client, httpx2.Client, str], gateway: Gateway, data: st.DataObject
) -> None:
    signed_in, stranger, token = clients
    client = data.draw(st.sampled_from([signed_in, signed_in, signed_in, stranger]), label="client")
    method, path = data.draw(
        st.sampled_from(ROUTES)
        | st.tuples(
            st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE"]),
            st.builds(lambda p, s: p + s, st.sampled_from(PATHS), VALUES),
        ),
        label="method and path",
    )
    query = data.draw(st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=5), label="query")
    form = data.draw(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6), label="form")
    form["csrf"] = data.draw(st.sampled_from([token, "", "wrong"]), label="csrf")
    if path.startswith("/ui/logout"):
        form["csrf"] = "wrong"  # the session stays signed in for the examples after this one
    headers = data.draw(
        st.sampled_from([{}, {"origin": gateway.url}, {"origin": "https://evil.example"}, {"cookie": "bw_ui=x.y.z"}]),
        label="headers",
    )
    url = quote(path, safe="/") + ("?" + urlencode(query) if query else "")
    if method == "POST":
        answer = client.request(method, url, data=form, headers=headers)
    else:
        answer = client.request(method, url, headers=headers)
    event(f"{'signed in' if client is signed_in else 'stranger'}: {answer.status_code}")
    assert answer.status_code < 500, (method, url, form, answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text
    if path.startswith("/ui/api/") and answer.status_code >= 400 and method == "GET":
        assert "error" in json.loads(answer.text), answer.text[:300]
