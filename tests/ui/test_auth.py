"""The dashboard's door, over HTTP without a browser: login with the admin key only, the session
cookie's attributes, CSRF and origin checks on every form, logout, the open and disabled modes,
and bad input answered with a 4xx page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import serve
from tests.ui.conftest import ADMIN, ENVIRON, Gateway, csrf_of, gateway_config


def test_no_session_redirects_to_login(gateway: Gateway) -> None:
    """Every page, and every form, without a session answers 303 to the login page."""
    client = gateway.client()
    for path in ("/ui/", "/ui/requests", "/ui/keys"):
        r = client.get(path)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/ui/login")
    r = client.post("/ui/keys/create", data={"name": "x"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"
    assert client.get("/ui").headers["location"] == "/ui/"


def test_login_with_the_admin_key_sets_a_strict_http_only_cookie(gateway: Gateway) -> None:
    """The admin key starts a session: HttpOnly, SameSite=Strict, Path=/ui (not Secure on http://127.0.0.1)."""
    client = gateway.client()
    page = client.get("/ui/login")
    assert page.status_code == 200
    assert 'type="password"' in page.text
    r = client.post("/ui/login", data={"admin_key": ADMIN, "next": "/ui/requests"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/requests"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie
    assert ADMIN not in cookie
    assert client.get("/ui/").status_code == 200
    assert client.get("/ui/login").headers["location"] == "/ui/"


def test_the_cookie_is_secure_unless_plain_http_to_loopback(gateway: Gateway) -> None:
    """Reached by another host name (as through a proxy), the session cookie is Secure."""
    client = gateway.client()
    r = client.post("/ui/login", data={"admin_key": ADMIN}, headers={"host": "gateway.example.com"})
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"]
    page = client.get("/ui/login", headers={"host": "gateway.example.com"})
    assert "plain HTTP" in page.text


def test_a_login_never_leads_off_the_dashboard(gateway: Gateway) -> None:
    """``next`` is followed only to a dashboard path."""
    for target in ("https://evil.example/", "//evil.example/ui/", "/admin/keys", "/ui/\\evil"):
        r = gateway.client().post("/ui/login", data={"admin_key": ADMIN, "next": target})
        assert r.headers["location"] == "/ui/"


def test_a_virtual_key_cannot_log_in(gateway: Gateway) -> None:
    """A working virtual key typed in the login form is refused (403), and no session starts."""
    admin = httpx2.Client(base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN}"})
    key = admin.post("/admin/keys", json={"name": "vk"}).json()["key"]
    client = gateway.client()
    r = client.post("/ui/login", data={"admin_key": key})
    assert r.status_code == 403
    assert "Virtual keys cannot" in r.text
    assert "set-cookie" not in r.headers
    assert key not in r.text
    assert client.get("/ui/").status_code == 303


@pytest.mark.parametrize(("typed", "status"), [("wrong-key", 401), ("", 400)])
def test_a_wrong_or_empty_key_is_refused(gateway: Gateway, typed: str, status: int) -> None:
    """A wrong key is 401 and an empty one 400, each on the login page with the reason; the typed text is not echoed."""
    r = gateway.client().post("/ui/login", data={"admin_key": typed})
    assert r.status_code == status
    assert 'id="login-error"' in r.text
    assert "set-cookie" not in r.headers
    if typed:
        assert typed not in r.text


def test_a_forged_or_tampered_cookie_is_no_session(gateway: Gateway) -> None:
    """A cookie whose signature does not match (or that is garbage) sends the browser to the login page."""
    client = gateway.login()
    value = client.cookies["bw_ui"]
    sid, expiry, mac = value.split(".")
    for forged in (f"{sid}.{int(expiry) + 999}.{mac}", f"x{sid}.{expiry}.{mac}", "garbage", "a.b.c", "."):
        other = gateway.client()
        other.cookies.set("bw_ui", forged)
        assert other.get("/ui/").status_code == 303


def test_forms_need_the_session_csrf_token(gateway: Gateway) -> None:
    """A POST with a session but without its CSRF token, or with a wrong one, is 403 and changes nothing."""
    client = gateway.login()
    token = csrf_of(client.get("/ui/").text)
    for data in ({}, {"csrf": "wrong"}, {"csrf": token[:-1]}):
        r = client.post("/ui/logout", data=data)
        assert r.status_code == 403
        assert "CSRF" in r.text
    assert client.get("/ui/").status_code == 200  # still logged in


def test_forms_from_another_origin_are_refused(gateway: Gateway) -> None:
    """A POST whose Origin is not this gateway is 403 even with the right token."""
    client = gateway.login()
    token = csrf_of(client.get("/ui/").text)
    for origin in ("https://evil.example", "null"):
        r = client.post("/ui/logout", data={"csrf": token}, headers={"origin": origin})
        assert r.status_code == 403
    r = client.post("/ui/login", data={"admin_key": ADMIN}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403


def test_logout_ends_the_session(gateway: Gateway) -> None:
    """Logging out clears the cookie, and the old cookie value no longer opens a page."""
    client = gateway.login()
    old = client.cookies["bw_ui"]
    token = csrf_of(client.get("/ui/").text)
    r = client.post("/ui/logout", data={"csrf": token}, headers={"origin": gateway.url})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"
    assert "Max-Age=0" in r.headers["set-cookie"]
    replay = gateway.client()
    replay.cookies.set("bw_ui", old)
    assert replay.get("/ui/").status_code == 303


def test_every_answer_carries_the_security_headers(gateway: Gateway) -> None:
    """Pages forbid framing and foreign scripts, and are never cached."""
    client = gateway.login()
    for path in ("/ui/", "/ui/login", "/ui/nope"):
        r = client.get(path)
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/").headers["cache-control"] == "no-store"


def test_bad_input_is_a_4xx_page(gateway: Gateway) -> None:
    """Unknown pages, methods, windows, media types and undecodable input are 4xx pages, never 500."""
    client = gateway.login()
    token = csrf_of(client.get("/ui/").text)
    assert client.get("/ui/nope").status_code == 404
    assert client.get("/ui/static/../../pyproject.toml").status_code == 404
    assert client.get("/ui/static/nothing.js").status_code == 404
    assert client.get("/ui/?window=13m").status_code == 400
    assert client.get("/ui/?window=%ff").status_code == 400
    assert client.delete("/ui/").status_code == 405
    assert client.get("/ui/logout").status_code == 405
    r = client.post("/ui/logout", content=b'{"csrf": "x"}', headers={"content-type": "application/json"})
    assert r.status_code == 415
    r = client.post("/ui/logout", content=b"csrf=%ff", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    r = client.post(
        "/ui/logout", content=b"a=" + b"x" * 20000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413
    assert client.get("/ui/").status_code == 200, token


def test_static_files_are_served_from_the_package(gateway: Gateway) -> None:
    """uPlot and the dashboard's own files come from the gateway, with their licence."""
    client = gateway.client()
    js = client.get("/ui/static/uPlot-1.6.32.min.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in js.headers["cache-control"]
    assert "MIT License" in client.get("/ui/static/uPlot.LICENSE.txt").text
    assert client.get("/ui/static/dashboard.css").status_code == 200


@pytest.fixture(scope="module")
def open_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ui-open")
    app = create_app(build_config(gateway_config(tmp, admin=False, access=False)), environ=ENVIRON)
    with serve(app) as url:
        yield url


def test_open_mode_needs_no_login_but_warns_and_still_checks_csrf(open_gateway: str) -> None:
    """With access control off and no admin key, pages open at once under a visible warning; forms still need the token."""
    client = httpx2.Client(base_url=open_gateway, follow_redirects=False)
    r = client.get("/ui/")
    assert r.status_code == 200
    assert "Access control is off" in r.text
    assert "bw_ui" in client.cookies
    assert client.get("/ui/login").headers["location"] == "/ui/"
    assert client.post("/ui/logout", data={"csrf": "wrong"}).status_code == 403


def test_access_on_without_an_admin_key_disables_the_dashboard(tmp_path: Path) -> None:
    """Access control on and no admin key: the login page says the dashboard is off, and no key logs in."""
    app = create_app(build_config(gateway_config(tmp_path, admin=False)), environ=ENVIRON)
    with serve(app) as url:
        client = httpx2.Client(base_url=url, follow_redirects=False)
        assert client.get("/ui/").status_code == 303
        assert "dashboard is disabled" in client.get("/ui/login").text
        r = client.post("/ui/login", data={"admin_key": "anything"})
        assert r.status_code == 403
        assert client.get("/ui/").status_code == 303
