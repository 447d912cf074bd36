"""The login throttle over HTTP: too many wrong keys from one address get a 429 page with
Retry-After, the key unread, until the window passes; a success resets the count; other
addresses are unaffected. The gateway runs on a manual clock, so the window passes at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx2
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.server.app import create_app
from breakwater.server.ui.throttle import FAILURES, WINDOW_S
from tests.server.running import serve
from tests.ui.conftest import ADMIN, ENVIRON, gateway_config


@dataclass
class Throttled:
    url: str
    clock: ManualClock

    def client(self, address: str) -> httpx2.Client:
        """A client whose connections come from ``address`` (a loopback address of its own)."""
        transport = httpx2.HTTPTransport(local_address=address)
        return httpx2.Client(base_url=self.url, transport=transport, follow_redirects=False, timeout=10)


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Throttled]:
    tmp = tmp_path_factory.mktemp("ui-throttle")
    clock = ManualClock(wall=1_800_000_000.0)
    app = create_app(build_config(gateway_config(tmp)), environ=ENVIRON, clock=clock)
    with serve(app) as url:
        yield Throttled(url, clock)


def fail(client: httpx2.Client, times: int) -> None:
    for i in range(times):
        r = client.post("/ui/login", data={"admin_key": f"wrong-{i}"})
        assert r.status_code == 401, r.text


def test_too_many_wrong_keys_lock_the_address_out_until_the_window_passes(
    throttled: Throttled, caplog: pytest.LogCaptureFixture
) -> None:
    """After the failures allowed, even the right key is refused (429, Retry-After) until the window has passed."""
    client = throttled.client("127.0.0.2")
    with caplog.at_level(logging.INFO, logger="breakwater.ui"):
        fail(client, FAILURES)
        r = client.post("/ui/login", data={"admin_key": ADMIN})
    assert r.status_code == 429
    assert r.headers["retry-after"] == str(int(WINDOW_S))
    assert "Too many failed logins" in r.text
    assert "try again in 5 minutes" in r.text
    assert 'id="login-error"' in r.text  # the login page, in the dashboard's style
    assert "set-cookie" not in r.headers
    assert r.headers["cache-control"] == "no-store"
    assert ADMIN not in r.text
    logged = caplog.text
    assert "locked out" in logged
    assert ADMIN not in logged
    assert "wrong-0" not in logged
    throttled.clock.advance(WINDOW_S - 1)
    r = client.post("/ui/login", data={"admin_key": ADMIN})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    throttled.clock.advance(1)
    r = client.post("/ui/login", data={"admin_key": ADMIN})
    assert r.status_code == 303
    assert client.get("/ui/").status_code == 200


def test_a_success_resets_the_count(throttled: Throttled) -> None:
    """Failures before a successful login do not add up with those after it."""
    client = throttled.client("127.0.0.3")
    fail(client, FAILURES - 1)
    assert client.post("/ui/login", data={"admin_key": ADMIN}).status_code == 303
    fail(throttled.client("127.0.0.3"), FAILURES - 1)
    assert throttled.client("127.0.0.3").post("/ui/login", data={"admin_key": ADMIN}).status_code == 303


def test_another_address_is_not_affected(throttled: Throttled) -> None:
    """One address locked out leaves another's login working."""
    fail(throttled.client("127.0.0.4"), FAILURES)
    assert throttled.client("127.0.0.4").post("/ui/login", data={"admin_key": ADMIN}).status_code == 429
    assert throttled.client("127.0.0.5").post("/ui/login", data={"admin_key": ADMIN}).status_code == 303


def test_empty_and_cross_origin_logins_are_not_counted(throttled: Throttled) -> None:
    """Only a key that was tried counts: empty forms and forms from another origin never lock anyone out."""
    client = throttled.client("127.0.0.6")
    for _ in range(2 * FAILURES):
        assert client.post("/ui/login", data={"admin_key": ""}).status_code == 400
        r = client.post("/ui/login", data={"admin_key": "x"}, headers={"origin": "https://evil.example"})
        assert r.status_code == 403
    assert client.post("/ui/login", data={"admin_key": ADMIN}).status_code == 303


def test_a_locked_out_login_is_not_read(throttled: Throttled) -> None:
    """A locked-out address's form is refused before it is read: even a malformed body gets the 429 page."""
    client = throttled.client("127.0.0.7")
    fail(client, FAILURES)
    r = client.post(
        "/ui/login", content=b"admin_key=%ff", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 429
    throttled.clock.advance(WINDOW_S)
    r = client.post(
        "/ui/login", content=b"admin_key=%ff", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 400


def test_logins_sent_at_once_are_judged_no_more_than_the_failures_allowed(throttled: Throttled) -> None:
    """Wrong keys sent together from one address, each form still arriving when the others are
    judged: at most the allowed failures are judged, the rest get 429."""
    attempts = 3 * FAILURES
    halfway = threading.Barrier(attempts, timeout=10)

    def body(i: int) -> Iterator[bytes]:
        yield b"admin_key=wrong-"
        halfway.wait()  # every form has started before any is complete
        yield str(i).encode()

    def attempt(i: int) -> int:
        with throttled.client("127.0.0.8") as client:
            headers = {"content-type": "application/x-www-form-urlencoded"}
            return client.post("/ui/login", content=body(i), headers=headers).status_code

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        statuses = list(pool.map(attempt, range(attempts)))
    assert statuses.count(401) == FAILURES
    assert statuses.count(429) == attempts - FAILURES
