"""Google access tokens for Vertex: loaded and refreshed in a worker thread by a background task,
read by the request path, failures counted and mapped; the credentials JSON by reference."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from breakwater.core.detectors import scan
from breakwater.core.errors import UpstreamAuthError
from breakwater.infra import google_auth
from breakwater.infra.credentials import CredentialError
from breakwater.infra.google_auth import (
    CLOUD_PLATFORM,
    REFRESH_MARGIN_S,
    AccessTokens,
    BearerSender,
    credentials_info,
    credentials_loader,
    secrets_of,
)
from breakwater.observability.redact import redact_secrets
from breakwater.providers.base import HttpRequest
from tests.server.test_vertex import service_account

START = 1_700_000_000.0
#: a token endpoint's error text with something secret-looking in it: it must never be logged
LEAKY = "invalid_grant: assertion ya29.leaked-token rejected"


class StepClock:
    """Wall time that moves only when the test wakes the sleeper; ``asleep`` is set while one waits."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []
        self.asleep = asyncio.Event()
        self._wake: asyncio.Future[None] | None = None

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._wake = asyncio.get_running_loop().create_future()
        self.asleep.set()
        await self._wake

    async def wake(self) -> None:
        """End the current sleep, having moved time by its length, and wait for the next one."""
        assert self._wake is not None
        self.now += self.sleeps[-1]
        self.asleep.clear()
        self._wake.set_result(None)
        await self.asleep.wait()


class FakeCredentials:
    """google-auth credentials that mint ``tok-N`` tokens an hour long, or fail as scripted."""

    def __init__(self, clock: StepClock, fail: int = 0, gate: threading.Event | None = None) -> None:
        self.clock = clock
        self.fail = fail
        self.gate = gate
        self.calls = 0
        self.token: str | None = None
        self.expiry: datetime | None = None

    def refresh(self, request: Any) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise ValueError(LEAKY)
        self.token = f"tok-{self.calls}"
        self.expiry = datetime.fromtimestamp(self.clock.now + 3600, UTC).replace(
            tzinfo=None
        )  # naive UTC, as google-auth


def _tokens(clock: StepClock, credentials: FakeCredentials) -> AccessTokens:
    return AccessTokens("vertex-prod", lambda: credentials, clock, refresh=lambda c: c.refresh(None))


async def test_first_request_waits_for_the_first_token_without_blocking_the_loop() -> None:
    """A request before the first token waits for it while the loop keeps running; then it gets the token."""
    clock, gate = StepClock(), threading.Event()
    credentials = FakeCredentials(clock, gate=gate)
    tokens = _tokens(clock, credentials)
    waiter = asyncio.create_task(tokens.token())
    other = asyncio.create_task(asyncio.to_thread(lambda: "the loop still runs"))
    assert await other == "the loop still runs"  # the refresh is blocked in its thread meanwhile
    assert not waiter.done()
    gate.set()
    assert await waiter == "tok-1"
    await tokens.stop()


async def test_requests_read_the_token_and_never_refresh_it() -> None:
    """Many requests with a valid token read it; only the background task refreshed, once."""
    clock = StepClock()
    credentials = FakeCredentials(clock)
    tokens = _tokens(clock, credentials)
    tokens.start()
    await clock.asleep.wait()
    assert [await tokens.token() for _ in range(50)] == ["tok-1"] * 50
    assert credentials.calls == 1
    assert tokens.refreshes == 1
    await tokens.stop()


async def test_token_is_refreshed_before_it_expires() -> None:
    """The refresher sleeps until REFRESH_MARGIN_S before expiry, then gets a new token requests see at once."""
    clock = StepClock()
    credentials = FakeCredentials(clock)
    tokens = _tokens(clock, credentials)
    tokens.start()
    await clock.asleep.wait()
    assert clock.sleeps == [3600 - REFRESH_MARGIN_S]
    await clock.wake()
    assert clock.now < START + 3600  # the old token had not expired yet
    assert await tokens.token() == "tok-2"
    assert (credentials.calls, tokens.refreshes, tokens.failures) == (2, 2, 0)
    await tokens.stop()


async def test_failed_refresh_is_counted_mapped_and_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """Refreshes that fail are counted, logged without their message, retried at 1 s then 2 s, and a
    request meanwhile gets an UpstreamAuthError naming the provider; a later success serves again."""
    caplog.set_level(logging.DEBUG)
    clock = StepClock()
    credentials = FakeCredentials(clock, fail=2)
    tokens = _tokens(clock, credentials)
    with pytest.raises(UpstreamAuthError) as caught:
        await tokens.token()
    assert caught.value.provider == "vertex-prod"
    assert "vertex-prod" in caught.value.message
    assert "ValueError" in caught.value.message
    assert LEAKY not in caught.value.message
    await clock.asleep.wait()
    await clock.wake()
    assert tokens.failures == 2
    assert clock.sleeps == [1.0, 2.0]
    with pytest.raises(UpstreamAuthError):
        await tokens.token()
    await clock.wake()
    assert await tokens.token() == "tok-3"
    assert (tokens.failures, tokens.refreshes) == (2, 1)
    assert clock.sleeps[-1] == 3600 - REFRESH_MARGIN_S  # back on schedule
    logged = [r.getMessage() + str(r.__dict__) for r in caplog.records]
    assert len([m for m in logged if "could not refresh" in m]) == 2
    assert not [m for m in logged if "ya29" in m or "tok-" in m]
    await tokens.stop()


async def test_expired_token_is_not_served_while_refreshes_fail() -> None:
    """A token past its expiry is never handed out: with the refresh failing, requests get the error."""
    clock = StepClock()
    credentials = FakeCredentials(clock)
    tokens = _tokens(clock, credentials)
    assert await tokens.token() == "tok-1"
    await clock.asleep.wait()
    credentials.fail = 100
    await clock.wake()  # the refresh before expiry fails
    assert await tokens.token() == "tok-1"  # still valid for REFRESH_MARGIN_S
    clock.now = START + 3600
    with pytest.raises(UpstreamAuthError):
        await tokens.token()
    await tokens.stop()


async def test_credentials_that_fail_to_load_are_counted_and_loaded_again() -> None:
    """A loader that fails (an unset variable, say) counts as a failed refresh and is tried again."""
    clock = StepClock()
    credentials = FakeCredentials(clock)
    loads: list[int] = []

    def load() -> FakeCredentials:
        loads.append(1)
        if len(loads) == 1:
            raise CredentialError("environment variable VERTEX_SA is not set")
        return credentials

    tokens = AccessTokens("v", load, clock, refresh=lambda c: c.refresh(None))
    with pytest.raises(UpstreamAuthError, match="CredentialError"):
        await tokens.token()
    await clock.asleep.wait()
    await clock.wake()
    assert await tokens.token() == "tok-1"
    assert (len(loads), tokens.failures, tokens.refreshes) == (2, 1, 1)
    await tokens.stop()


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[HttpRequest] = []

    @asynccontextmanager
    async def open(self, request: HttpRequest, *, provider: str, connect_timeout: float) -> AsyncIterator[Any]:
        self.sent.append(request)
        yield object()


async def test_bearer_sender_adds_the_current_token() -> None:
    """The sender adds Authorization: Bearer with the current token, keeping the request's own headers."""
    clock = StepClock()
    tokens = _tokens(clock, FakeCredentials(clock))
    inner = RecordingSender()
    sender = BearerSender(inner, tokens)
    request = HttpRequest("POST", "https://x/v1/m:generateContent", {"content-type": "application/json"}, b"{}")
    async with sender.open(request, provider="v", connect_timeout=1.0):
        pass
    assert inner.sent[0].headers == {"content-type": "application/json", "authorization": "Bearer tok-1"}
    assert request.headers == {"content-type": "application/json"}  # the adapter's request is not changed
    await tokens.stop()


# --- credentials by reference ------------------------------------------------------------------


@pytest.fixture(scope="module")
def account() -> dict[str, str]:
    return service_account("http://127.0.0.1:9/token")


def test_service_account_json_from_env_or_file_loads_scoped_credentials(
    account: dict[str, str], tmp_path: Path
) -> None:
    """A service-account JSON named by env: or file: loads as service-account credentials scoped to
    cloud-platform, without a network call (the guard would fail the test)."""
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account), encoding="utf-8")
    for reference, environ in (("env:SA", {"SA": json.dumps(account)}), (f"file:{path}", {})):
        credentials: Any = credentials_loader(reference, environ)()
        assert type(credentials).__module__ == "google.oauth2.service_account"
        assert credentials.service_account_email == account["client_email"]
        assert list(credentials.scopes) == [CLOUD_PLATFORM]
        assert credentials.token is None  # nothing fetched yet


def test_no_reference_means_application_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a reference, the loader asks Application Default Credentials, scoped to cloud-platform."""
    asked: list[Mapping[str, Any]] = []
    sentinel = object()

    def default(**kw: Any) -> tuple[object, str]:
        asked.append(kw)
        return sentinel, "proj"

    import google.auth

    monkeypatch.setattr(google.auth, "default", default)
    assert credentials_loader(None, {})() is sentinel
    assert asked == [{"scopes": [CLOUD_PLATFORM]}]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("not json", "does not hold a credentials JSON document"),
        ("[1, 2]", "does not hold a credentials JSON object"),
        ('{"type": "gdch_service_account"}', "expected one of: service_account"),
        ('{"private_key": "x"}', "of type 'None'"),
    ],
)
def test_credentials_that_are_not_a_known_json_are_refused_by_reference(value: str, complaint: str) -> None:
    """A reference holding something else is a CredentialError naming the reference, never the value."""
    with pytest.raises(CredentialError, match=complaint) as caught:
        credentials_info("env:SA", {"SA": value})
    assert "env:SA" in str(caught.value)
    assert value not in str(caught.value)


def test_secrets_of_a_document_are_its_keys(account: dict[str, str]) -> None:
    """The private key (and an authorized user's secret and refresh token) are what logs must hide."""
    assert secrets_of(account) == [account["private_key"]]
    user = {"type": "authorized_user", "client_id": "id", "client_secret": "cs-123456", "refresh_token": "rt-123456"}
    assert secrets_of(user) == ["cs-123456", "rt-123456"]


def test_refresh_uses_google_auth_transport_once() -> None:
    """The default refresher builds google-auth's requests transport once and reuses it."""
    seen: list[Any] = []

    class Credentials:
        def refresh(self, request: Any) -> None:
            seen.append(request)

    refresh = google_auth.transport_refresher()
    refresh(Credentials())  # type: ignore[arg-type]
    refresh(Credentials())  # type: ignore[arg-type]
    assert type(seen[0]).__module__ == "google.auth.transport.requests"
    assert seen[0] is seen[1]


def test_an_access_token_is_a_secret_by_its_shape() -> None:
    """A Google OAuth access token (ya29.) is a secret to the detectors: logs redact it, DLP finds it."""
    token = "ya29.a0AfB_byDq3kVn-8X2pLm4Tz9QwErTyUiOp1234567890abcdEFGH"
    assert [f.kind for f in scan(f"auth failed for {token} at noon")] == ["secret"]
    assert token not in redact_secrets(f"authorization={token}")
