"""Google OAuth access tokens for Vertex AI, kept fresh off the request path, and the sender that
adds them to each request.

google-auth (the ``vertex`` extra, imported only when a Vertex provider is configured) loads the
credentials and refreshes them, and both are blocking I/O: reading a key file, asking the
metadata server, posting to the token endpoint. So ``AccessTokens`` runs them in a worker thread
from a background task that refreshes ``REFRESH_MARGIN_S`` before the token expires; the request
path only reads the current token. A request that arrives before the first token waits for it
without blocking the loop; one that arrives while refreshing keeps failing gets a clear
``UpstreamAuthError`` at once, and every failed refresh is counted (``AccessTokens.failures``).

Credentials are a service-account (or workload identity federation, or authorized-user) JSON
named by an ``env:`` / ``file:`` reference, or, with none, Application Default Credentials:
``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's user credentials, the metadata server of GKE
(workload identity), Cloud Run or Compute Engine. Neither the JSON nor a token is ever logged
or put in an error: failures say which provider and which exception class, nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from breakwater.core.errors import UpstreamAuthError
from breakwater.engine.ports import Clock, HttpSender, UpstreamResponse
from breakwater.engine.tasks import stop_task
from breakwater.infra.credentials import CredentialError, resolve
from breakwater.providers.base import HttpRequest

log = logging.getLogger("breakwater.google_auth")

#: the OAuth scope Vertex AI needs
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
#: refresh this long before a token expires (Google's tokens live an hour)
REFRESH_MARGIN_S = 300.0
#: a token this close to its expiry is not handed out (it could expire on the way)
EXPIRY_SKEW_S = 10.0
#: a token whose credentials name no expiry is refreshed after this long
DEFAULT_LIFETIME_S = 3000.0
#: the waits between failed refreshes: doubling from the first, capped at the last
RETRY_S = (1.0, 60.0)
#: the credentials JSON types a reference may hold
CREDENTIAL_TYPES = ("service_account", "authorized_user", "external_account")
AWS_SUBJECT_TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"
#: the JSON fields that are secrets of their own, hidden in logs beside the whole document
SECRET_FIELDS = ("private_key", "client_secret", "refresh_token")


class GoogleCredentials(Protocol):
    """What ``AccessTokens`` uses of a ``google.auth.credentials.Credentials``."""

    token: str | None
    #: naive UTC, as google-auth keeps it (``None``: it did not say)
    expiry: datetime | None

    def refresh(self, request: Any) -> None: ...


#: loads the credentials (blocking: it runs in a worker thread)
Loader = Callable[[], GoogleCredentials]
#: refreshes them in place (blocking: it runs in a worker thread)
Refresher = Callable[[GoogleCredentials], None]


class GoogleAuthMissing(RuntimeError):
    """A Vertex provider is configured but google-auth is not installed."""


def require_google_auth() -> None:
    """Raise ``GoogleAuthMissing`` unless google-auth (and its requests transport) can be imported."""
    try:
        import google.auth
        import google.auth.transport.requests  # noqa: F401
    except ImportError:
        raise GoogleAuthMissing("Vertex AI needs google-auth: pip install 'breakwater[vertex]'") from None


def credentials_info(reference: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The credentials JSON a reference names, as an object.

    Raises:
        CredentialError: the reference names nothing, not a JSON object, or one of a type this
            module does not load (the message names the reference and the type, never a value).
    """
    text = resolve(reference, environ) or ""
    try:
        info = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise CredentialError(f"{reference} does not hold a credentials JSON document") from None
    if not isinstance(info, dict):
        raise CredentialError(f"{reference} does not hold a credentials JSON object")
    if info.get("type") not in CREDENTIAL_TYPES:
        raise CredentialError(
            f"{reference} holds credentials of type {str(info.get('type'))[:40]!r}; "
            f"expected one of: {', '.join(CREDENTIAL_TYPES)}"
        )
    return info


def _from_info(info: dict[str, Any]) -> GoogleCredentials:
    """Credentials of ``info``'s own type, by that type's loader.

    Each type is loaded by its own constructor rather than google-auth's generic
    ``load_credentials_from_dict``, which accepts any type and, for workload identity
    federation, asks the network for a project id while loading.
    """
    kind, scopes = info["type"], [CLOUD_PLATFORM]
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]
    if kind == "authorized_user":  # gcloud's user credentials
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]
    # external_account: workload identity federation, from AWS, a command, or a file or URL
    source = info.get("credential_source") or {}
    if info.get("subject_token_type") == AWS_SUBJECT_TOKEN_TYPE:
        from google.auth import aws

        return aws.Credentials.from_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]
    if isinstance(source, dict) and source.get("executable") is not None:
        from google.auth import pluggable

        return pluggable.Credentials.from_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]
    from google.auth import identity_pool

    return identity_pool.Credentials.from_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]


def secrets_of(info: Mapping[str, Any]) -> list[str]:
    """The secret values inside a credentials document, for log redaction."""
    return [str(info[k]) for k in SECRET_FIELDS if isinstance(info.get(k), str) and info[k]]


def credentials_loader(reference: str | None, environ: Mapping[str, str]) -> Loader:
    """A loader of the credentials ``reference`` names, or of Application Default Credentials
    when it is ``None``, scoped to cloud-platform. Nothing is read until it is called."""

    def load() -> GoogleCredentials:
        if reference is None:
            import google.auth

            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
            loaded: GoogleCredentials = credentials
            return loaded
        return _from_info(credentials_info(reference, environ))

    return load


def transport_refresher() -> Refresher:
    """Refreshes credentials over google-auth's requests transport (one session, reused)."""
    transport: list[Any] = []

    def refresh(credentials: GoogleCredentials) -> None:
        if not transport:
            import google.auth.transport.requests

            transport.append(google.auth.transport.requests.Request())
        credentials.refresh(transport[0])

    return refresh


def _epoch(expiry: datetime) -> float:
    return (expiry if expiry.tzinfo is not None else expiry.replace(tzinfo=UTC)).timestamp()


class AccessTokens:
    """One provider's access token, refreshed by a background task (started by ``start``, or by
    the first ``token`` call).

    Args:
        provider: the provider's name, for errors and logs.
        load: loads the credentials (in a worker thread; retried until it works).
        clock: wall time to compare with the token's expiry, and the waits between refreshes.
        refresh: refreshes the credentials (in a worker thread); google-auth's by default.
    """

    def __init__(self, provider: str, load: Loader, clock: Clock, refresh: Refresher | None = None) -> None:
        self.provider = provider
        self._load = load
        self._refresh = refresh or transport_refresher()
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        #: the last attempt's failure (the exception's class name), ``None`` after a success
        self._error: str | None = None
        self._attempted = asyncio.Event()  # set when an attempt ends; replaced for the next one
        self._task: asyncio.Task[None] | None = None
        #: refreshes that worked, and that failed (the admin view and tests read them)
        self.refreshes = 0
        self.failures = 0

    def start(self) -> None:
        """Start refreshing (idempotent); the first token is fetched at once."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"google-token:{self.provider}")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    @property
    def running(self) -> bool:
        """Whether the background refresher is running."""
        return self._task is not None and not self._task.done()

    async def token(self) -> str:
        """The current access token; the first one is waited for (asynchronously).

        Raises:
            UpstreamAuthError: no valid token, and the last refresh failed.
        """
        while True:
            token = self._token
            if token is not None and self._clock.time() < self._expires_at - EXPIRY_SKEW_S:
                return token
            if self._error is not None:
                raise UpstreamAuthError(
                    f"{self.provider}: no Google access token (the last refresh failed: {self._error})",
                    provider=self.provider,
                )
            attempted = self._attempted
            self.start()
            await attempted.wait()

    async def _run(self) -> None:
        credentials: GoogleCredentials | None = None
        backoff = RETRY_S[0]
        while True:
            try:
                if credentials is None:
                    credentials = await asyncio.to_thread(self._load)
                await asyncio.to_thread(self._refresh, credentials)
                token, expiry = credentials.token, credentials.expiry
                if not token:
                    raise ValueError("the credentials gave no token")
            except Exception as exc:  # noqa: BLE001 - google-auth raises many kinds; each is counted, logged and mapped
                self.failures += 1
                self._error = type(exc).__name__
                # the class only: google-auth's messages may quote the token endpoint's answer
                log.warning(
                    "could not refresh the Google access token of provider %s (%s); retrying in %.0f s",
                    self.provider,
                    self._error,
                    backoff,
                    extra={"provider": self.provider},
                )
                wait, backoff = backoff, min(backoff * 2, RETRY_S[1])
            else:
                now = self._clock.time()
                self._token, self._error = token, None
                self._expires_at = _epoch(expiry) if expiry is not None else now + DEFAULT_LIFETIME_S
                self.refreshes += 1
                backoff = RETRY_S[0]
                wait = max(self._expires_at - REFRESH_MARGIN_S - now, RETRY_S[0])
            attempted, self._attempted = self._attempted, asyncio.Event()
            attempted.set()
            await self._clock.sleep(wait)


class BearerSender:
    """An ``HttpSender`` that adds ``Authorization: Bearer <token>`` from ``tokens`` to each request.

    Waiting for a first token happens inside ``open``, so the deployment's timeouts bound it.
    """

    __slots__ = ("_inner", "_tokens")

    def __init__(self, inner: HttpSender, tokens: AccessTokens) -> None:
        self._inner = inner
        self._tokens = tokens

    def open(
        self, request: HttpRequest, *, provider: str, connect_timeout: float
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        return self._open(request, provider, connect_timeout)

    @asynccontextmanager
    async def _open(
        self, request: HttpRequest, provider: str, connect_timeout: float
    ) -> AsyncIterator[UpstreamResponse]:
        token = await self._tokens.token()
        authed = dataclasses.replace(request, headers={**request.headers, "authorization": f"Bearer {token}"})
        async with self._inner.open(authed, provider=provider, connect_timeout=connect_timeout) as response:
            yield response
