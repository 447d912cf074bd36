"""AWS credentials for Bedrock deployments, held in memory so that signing never waits on I/O.

Two sources, both ``providers.sigv4.CredentialsSource``:

* ``StaticCredentials``: keys given by reference in the config (``env:`` / ``file:``), resolved
  once when the runtime is built, like every provider key.
* ``CredentialChain``: AWS's standard chain through a botocore session (environment variables,
  shared config and credentials files and their profiles, SSO, web identity, container and
  instance roles). Finding and refreshing them may read files or call a metadata endpoint, so it
  runs in a worker thread: once when the runtime starts, then every ``interval`` seconds, which
  lets botocore refresh temporary credentials well before they expire (it refreshes within 15
  minutes of expiry). A failed refresh keeps the credentials held so far and is logged by its
  exception type only; no log line, error or ``repr`` holds a secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from breakwater.engine.ports import Clock
from breakwater.engine.tasks import stop_task
from breakwater.providers.sigv4 import AwsCredentials

log = logging.getLogger("breakwater.aws")

#: seconds between two looks at the chain (botocore only does I/O when a refresh is due)
REFRESH_INTERVAL = 60.0

Resolver = Callable[[], AwsCredentials | None]


class StaticCredentials:
    """A key pair given in the config; nothing to start or refresh."""

    __slots__ = ("_credentials",)

    def __init__(self, credentials: AwsCredentials) -> None:
        self._credentials = credentials

    def current(self) -> AwsCredentials | None:
        return self._credentials

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class CredentialChain:
    """The standard AWS chain, resolved off the request path and kept fresh.

    Args:
        resolve: finds the current credentials (blocking: run in a thread), ``None`` if there are
            none; ``botocore_chain(profile)`` in production, a fake in tests.
        clock: paces the refreshes.
        hide: told every secret found, so no log line shows it (``observability.logging.hide_secrets``).
        interval: seconds between refreshes.
    """

    def __init__(
        self,
        resolve: Resolver,
        clock: Clock,
        hide: Callable[[Iterable[str | None]], None] = lambda _: None,
        interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._resolve = resolve
        self._clock = clock
        self._hide = hide
        self._interval = interval
        self._credentials: AwsCredentials | None = None
        self._task: asyncio.Task[None] | None = None

    def current(self) -> AwsCredentials | None:
        return self._credentials

    async def start(self) -> None:
        """Resolve once (in a thread), then keep refreshing in the background."""
        await self.refresh()
        if self._credentials is None:
            log.warning("no AWS credentials found in the standard chain: Bedrock requests fail until some appear")
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="aws-credentials")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)

    async def refresh(self) -> None:
        """Look at the chain once; on failure keep what is held."""
        try:
            found = await asyncio.to_thread(self._resolve)
        except Exception as exc:  # noqa: BLE001 - any provider of the chain may fail; the loop must go on
            log.warning("refreshing AWS credentials failed (%s); keeping the current ones", type(exc).__name__)
            return
        if found is not None:
            self._hide([found.secret_access_key, found.session_token])
        self._credentials = found

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            await self.refresh()


def botocore_chain(profile: str | None) -> Resolver:
    """A resolver over a botocore session's credential chain (``profile``: a named profile).

    The session is made at the first call, in the worker thread: making it reads the config files.
    """
    holder: list[object] = []

    def resolve() -> AwsCredentials | None:
        if not holder:
            import botocore.session  # lazily: only Bedrock providers on the chain need it

            holder.append(botocore.session.Session(profile=profile).get_credentials())
        credentials = holder[0]
        if credentials is None:
            holder.clear()  # none yet: look again next time (a role may be attached later)
            return None
        frozen = credentials.get_frozen_credentials()  # type: ignore[attr-defined]
        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)

    return resolve
