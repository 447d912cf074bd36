"""A key made or rotated on the keys page, over HTTP: the POST redirects (303) to a GET that shows
the secret once, never cached; that URL again, or in another session, shows no secret, and
nothing posts the form twice."""

from __future__ import annotations

import logging
import re

import httpx2
import pytest

from tests.ui.conftest import ADMIN, Gateway, csrf_of


def admin_keys(gateway: Gateway, name: str) -> list[dict[str, object]]:
    admin = httpx2.Client(base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN}"})
    return [k for k in admin.get("/admin/keys").json()["data"] if k["name"] == name]


def secret_on(html: str) -> str | None:
    match = re.search(r'id="new-secret">([^<]+)<', html)
    return match.group(1) if match else None


def create(client: httpx2.Client, name: str) -> httpx2.Response:
    token = csrf_of(client.get("/ui/keys").text)
    return client.post("/ui/keys/create", data={"csrf": token, "name": name})


def test_creating_a_key_redirects_to_a_page_that_shows_its_secret_once(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """POST answers 303 to /ui/keys?created=<token>; the first GET shows the secret (no-store), the second a note."""
    client = gateway.login()
    with caplog.at_level(logging.DEBUG):
        r = create(client, "prg-once")
        assert r.status_code == 303
        location = r.headers["location"]
        assert re.fullmatch(r"/ui/keys\?created=[A-Za-z0-9_-]{24,}", location)
        assert client.head(location).status_code == 200  # a HEAD does not use the slot up
        first = client.get(location)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    secret = secret_on(first.text)
    assert secret is not None and secret.startswith("bw-")
    assert secret not in location
    assert secret not in caplog.text
    again = client.get(location)
    assert again.status_code == 200
    assert secret not in again.text
    assert 'id="secret-gone"' in again.text
    assert "prg-once" in again.text  # the list is still shown
    assert len(admin_keys(gateway, "prg-once")) == 1


def test_another_session_s_token_shows_nothing_and_leaves_the_slot(gateway: Gateway) -> None:
    """The redirect's URL opened in another session shows no secret, and the session that made the key still sees it."""
    owner = gateway.login()
    location = create(owner, "prg-foreign").headers["location"]
    other = gateway.login()
    page = other.get(location)
    assert page.status_code == 200
    assert secret_on(page.text) is None
    assert secret_on(owner.get(location).text) is not None


def test_rotating_a_key_redirects_to_its_new_secret_once(gateway: Gateway) -> None:
    """Rotate answers 303; the page shows the new secret once, and the key was rotated once."""
    client = gateway.login()
    first = secret_on(client.get(create(client, "prg-rotate").headers["location"]).text)
    (key,) = admin_keys(gateway, "prg-rotate")
    token = csrf_of(client.get("/ui/keys").text)
    r = client.post("/ui/keys/action", data={"csrf": token, "key_id": str(key["id"]), "action": "rotate"})
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    rotated = secret_on(page.text)
    assert rotated is not None and rotated != first
    assert "Key rotated" in page.text
    assert secret_on(client.get(r.headers["location"]).text) is None


def test_an_unknown_or_empty_token_is_only_a_note(gateway: Gateway) -> None:
    """A made-up token, or an empty one, shows the list (with the note for a token), never an error."""
    client = gateway.login()
    page = client.get("/ui/keys?created=made-up")
    assert page.status_code == 200
    assert 'id="secret-gone"' in page.text
    page = client.get("/ui/keys?created=")
    assert page.status_code == 200
    assert 'id="secret-gone"' not in page.text
