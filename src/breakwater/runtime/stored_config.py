"""Configuration versions in a store: applying, rolling back, and a gateway following the newest.

The operations here are shared by ``breakwater config ...`` (cli/config.py) and the admin API
(server/config_admin.py). A version is checked before it is stored, exactly as ``check-config``
checks a file: its YAML and every cross-check, no credential-shaped text anywhere in it (a stored
version never holds a key: keys are ``env:`` / ``file:`` references), and unless told otherwise
the environment (references resolve, hosts known). The gateway checks it again when it loads it;
a replica where it does not build keeps running what it runs and says so in ``/readyz``.

Relative paths in a stored version (SQLite files, the spool, ``file:`` references) are relative
to the gateway's working directory: a stored version has no file to anchor them at.

``StoredConfig`` is a gateway's source of configuration when it runs from a store (``breakwater
serve --config-store URL``): it loads the newest version, and follows new ones: on the store's
change signal (SQLite, every 0.25 s), by polling the newest number (PostgreSQL, every
``access.reload_s``), and at once when Redis pub/sub announces one.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from breakwater.core.config import Config, ConfigError, Problem, parse_config
from breakwater.core.config.paths import anchor_paths
from breakwater.core.config.versions import ConfigVersion, ConfigVersions, VersionConflict, text_hash
from breakwater.engine.ports import Clock, SystemClock
from breakwater.engine.tasks import stop_task
from breakwater.infra.credentials import resolve_optional
from breakwater.observability.redact import SECRET_SHAPES
from breakwater.runtime.loading import checked, read_config_text
from breakwater.runtime.swap import Loaded, Runtimes

if TYPE_CHECKING:
    from breakwater.infra.invalidation import RedisInvalidations

log = logging.getLogger("breakwater.config")

#: the environment variable naming the store a gateway runs from (set by ``serve --config-store``
#: for its workers; the ``breakwater config`` commands read it too)
STORE_ENV = "BREAKWATER_CONFIG_STORE"
#: seconds between checks of a SQLite store's change signal
WATCH_S = 0.25


def versions_store(url: str, environ: Mapping[str, str]) -> ConfigVersions:
    """The store at ``url`` (``sqlite:///path``, ``postgresql://...``, or an ``env:`` / ``file:``
    reference to one).

    Raises:
        ConfigError: the URL is none of these, or its reference does not resolve.
    """
    from breakwater.infra.credentials import CredentialError
    from breakwater.infra.keystore import store_for

    try:
        store: ConfigVersions = store_for(resolve_optional(url, environ))
    except (ValueError, CredentialError) as exc:
        raise ConfigError("<config store>", [Problem("", str(exc))]) from None
    return store


def config_of(version: ConfigVersion) -> Config:
    """The configuration a version holds, its relative paths anchored at the working directory.

    Raises:
        ConfigError: the text is not a valid configuration.
    """
    return anchor_paths(parse_config(version.text, f"config version {version.number}"), Path.cwd().absolute())


def validate(text: str, source: str, environ: Mapping[str, str], *, environment: bool = True) -> Config:
    """``text`` as a configuration fit to be stored.

    Raises:
        ConfigError: every problem found (credential-shaped text, YAML, schema, cross-checks; with
            ``environment``, references that do not resolve and unknown hosts).
    """
    leaks = [
        Problem(f"line {text.count(chr(10), 0, m.start()) + 1}", "looks like a credential; use env:NAME or file:/path")
        for m in SECRET_SHAPES.finditer(text)
    ]
    try:
        config = anchor_paths(parse_config(text, source), Path.cwd().absolute())
    except ConfigError as exc:
        raise ConfigError(source, [*leaks, *exc.problems]) from None
    if leaks:
        raise ConfigError(source, leaks)
    return checked(config, environ) if environment else config


@dataclass(frozen=True, slots=True)
class Applied:
    version: ConfigVersion
    #: ``False``: the text was the newest version's already, and nothing was stored
    created: bool


async def apply(
    store: ConfigVersions,
    text: str,
    *,
    author: str,
    message: str,
    now: float,
    environ: Mapping[str, str],
    environment: bool = True,
    action: str = "apply",
    expect: int | None = None,
) -> Applied:
    """Check ``text`` and store it as the newest version (nothing when it is the newest already).

    Raises:
        ConfigError: the text is not fit to be stored; nothing was written.
        VersionConflict: ``expect`` is not the newest number any more; nothing was written.
    """
    validate(text, "<applied config>", environ, environment=environment)
    newest = await store.config_get()
    if newest is not None and newest.hash == text_hash(text) and newest.text == text:
        if expect is not None and expect != newest.number:
            raise VersionConflict(f"version {newest.number} was applied since version {expect}")
        return Applied(newest, created=False)
    version = await store.config_append(text, author=author, action=action, message=message, now=now, expect=expect)
    return Applied(version, created=True)


async def rollback(
    store: ConfigVersions,
    to: int | None,
    *,
    author: str,
    message: str,
    now: float,
    environ: Mapping[str, str],
    environment: bool = True,
    action: str = "rollback",
) -> ConfigVersion:
    """Apply the text of version ``to`` (default: the one before the newest) as a new version.

    Raises:
        LookupError: there is no such version (or nothing to roll back to).
        ConfigError: that version no longer passes the checks; nothing was written.
        VersionConflict: another version was applied meanwhile; nothing was written.
    """
    newest = await store.config_newest_number()
    target = newest - 1 if to is None else to
    old = await store.config_get(target) if target >= 1 else None
    if old is None:
        raise LookupError(
            f"no version {target} to roll back to (newest: {newest})" if target >= 1 else "no earlier version"
        )
    if target == newest:
        raise LookupError(f"version {target} is the newest already")
    validate(old.text, f"config version {target}", environ, environment=environment)
    note = message or f"rollback to version {target}"
    return await store.config_append(old.text, author=author, action=action, message=note, now=now, expect=newest)


def diff(a: ConfigVersion, b: ConfigVersion) -> str:
    """A unified diff of two versions' texts (empty when they are the same)."""
    lines = difflib.unified_diff(
        a.text.splitlines(keepends=True),
        b.text.splitlines(keepends=True),
        fromfile=f"version {a.number}",
        tofile=f"version {b.number}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


async def deploy_file(
    store: ConfigVersions, path: str, *, author: str, now: float, environ: Mapping[str, str]
) -> Applied | None:
    """A file deployed with the gateway (``serve --config FILE --config-store URL``): applied when
    it differs from the file deployed last, so a restart with the same file keeps a rollback made
    since, and a new deploy (a changed file) becomes the newest version.

    Returns:
        The version applied, or ``None`` when the file is the one deployed last.
    """
    text = await asyncio.to_thread(read_config_text, path)  # a file that extends another: merged
    for _ in range(2):  # another replica may deploy the same file at the same moment: look again
        newest = await store.config_newest_number()
        deployed = next((v for v in await store.config_history(500) if v.action == "start-up"), None)
        if deployed is not None and deployed.text == text:
            return None
        with contextlib.suppress(VersionConflict):
            return await apply(
                store,
                text,
                author=author,
                message=f"deployed from {path}",
                now=now,
                environ=environ,
                action="start-up",
                expect=newest,
            )
    return None


class StoredConfig:
    """A gateway's configuration from a store. See the module docstring.

    Args:
        store: the versions (opened on first use, by the loop that uses it).
        environ: where the versions' references resolve.
        file: a file deployed with the gateway (``deploy_file``), read at start and on each reload.
        author: who the file's versions are by.
        clock: the time a deployed file's version is stamped with.
    """

    def __init__(
        self,
        store: ConfigVersions,
        environ: Mapping[str, str],
        *,
        file: str | None = None,
        author: str = "serve",
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self._clock: Clock = clock or SystemClock()
        self._environ = environ
        self._file = file
        self._author = author
        self._opened = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._pubsub: RedisInvalidations | None = None
        #: the newest version seen in the store, and a problem with it that stops it running here
        self.newest = 0
        self.failed: tuple[int, str] | None = None

    async def load(self) -> Loaded:
        """The newest version (after deploying the file, if any).

        Raises:
            ConfigError: the store cannot be read, holds no version, or its newest is invalid.
        """
        try:
            await self.opened()
            if self._file is not None:
                now = self._clock.time()
                await deploy_file(self.store, self._file, author=self._author, now=now, environ=self._environ)
            version = await self.store.config_get()
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError("<config store>", [Problem("", f"cannot read it: {type(exc).__name__}")]) from exc
        if version is None:
            raise ConfigError(
                "<config store>", [Problem("", "holds no configuration yet: breakwater config apply FILE first")]
            )
        self.newest = max(self.newest, version.number)
        return Loaded(config_of(version), version.number)

    async def opened(self) -> ConfigVersions:
        """The store, opened on this loop if it is not yet."""
        if not self._opened:
            await self.store.open()
            self._opened = True
        return self.store

    def read_now(self) -> Loaded:
        """``load``, from code that may already run in an event loop (uvicorn's worker factory):
        on a loop of its own, in a thread; the store is reopened by the gateway's loop later."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="breakwater-config") as pool:
            return pool.submit(asyncio.run, self._load_and_close()).result()

    async def _load_and_close(self) -> Loaded:
        try:
            return await self.load()
        finally:
            if self._opened:
                self._opened = False
                await self.store.close()

    def follow(self, runtimes: Runtimes) -> None:
        """Reload ``runtimes`` whenever a newer version is stored, from a background task."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        config = runtimes.current.config
        if config.redis is not None:
            self._pubsub = announcer(config, self._environ)
            self._pubsub.listen(self.wake)
        self._task = asyncio.get_running_loop().create_task(self._follow(runtimes), name="breakwater-config")

    def wake(self) -> None:
        """Look for a new version now (pub/sub, or an apply through this gateway's admin API)."""
        if self._wake is not None:
            self._wake.set()

    async def _follow(self, runtimes: Runtimes) -> None:
        assert self._wake is not None
        signals = False  # whether the store has a cheap change signal (SQLite) to watch often
        unreadable = False
        while True:
            every = WATCH_S if signals else runtimes.current.config.access.reload_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), every)
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                await self.opened()
                changed = await self.store.changed()
                signals = changed is not None
                if changed is False and not woken:
                    continue
                self.newest = await self.store.config_newest_number()
            except Exception as exc:  # noqa: BLE001 - any driver's failure: keep running what runs, look again later
                if not unreadable:
                    log.warning("cannot read the configuration store (%s); still running what runs", type(exc).__name__)
                unreadable = True
                continue
            unreadable = False
            running = runtimes.current.version
            if self.newest == running or (self.failed is not None and self.failed[0] == self.newest):
                continue
            try:
                await runtimes.reload()
                self.failed = None
            except ConfigError as exc:
                self.failed = (self.newest, str(exc))
                log.error(
                    "configuration version %d does not run here; still running %s:\n%s", self.newest, running, exc
                )

    def readiness(self, running: int | None) -> dict[str, Any]:
        """What ``/readyz`` says of the stored configuration."""
        out: dict[str, Any] = {"version": running, "newest": max(self.newest, running or 0)}
        if self.failed is not None:
            out["error"] = f"version {self.failed[0]} does not run here: {self.failed[1]}"
        return out

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self._pubsub is not None:
            await self._pubsub.close()
            self._pubsub = None
        if self._opened:
            self._opened = False
            await self.store.close()


def announcer(config: Config, environ: Mapping[str, str]) -> RedisInvalidations:
    """Pub/sub of new versions between replicas, on the config's Redis (``<namespace>config``)."""
    from breakwater.infra.invalidation import RedisInvalidations

    r = config.redis
    assert r is not None
    url = resolve_optional(r.url, environ)
    return RedisInvalidations(url, namespace=r.namespace, timeout_s=max(r.timeout_ms / 1000, 0.5), topic="config")
