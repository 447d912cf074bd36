"""Who is calling: the in-memory directory of keys, teams and per-user/per-tag limits.

Authentication must not cost a database round-trip per request, so the request path reads a
snapshot of the access store (``engine/access/store.py``) held in dictionaries: one HMAC and
one dict lookup per request. The snapshot is replaced, never mutated, so a reader always sees
one consistent version.

It is refreshed:
- at once on this replica after each admin change (``operations.py`` calls ``refresh``);
- when another replica announces a change (``invalidate``, called by the Redis pub/sub
  listener), within milliseconds;
- within ``watch_s`` (0.25 s) of a change another process made to a store that can tell
  cheaply that it changed (``AccessStore.changed``: SQLite's ``data_version``, read on the
  store's thread). That is how a key made with the CLI works on the same machine at once;
- every ``reload_s`` otherwise, and as a safety net: one cheap query for the store's version,
  and a full read only when it moved. That bounds how long a change made elsewhere (a replica
  without Redis on PostgreSQL) takes to apply.

A store that cannot be read keeps the last snapshot serving (logged once per outage). Until a
first snapshot is loaded, requests get 503 ``keys_unavailable`` (a valid key must not look
invalid) and ``/readyz`` says not ready; the background loop keeps trying every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from breakwater.core.errors import AuthenticationFailed, BackendUnavailable, PermissionDenied
from breakwater.core.keys import (
    EVERY_USER,
    AccessSnapshot,
    Denial,
    SubjectLimits,
    Team,
    VirtualKey,
    authorize,
    hash_key,
    looks_like_key,
)
from breakwater.core.limits import Limits
from breakwater.engine.access.store import AccessStore
from breakwater.engine.ports import Clock
from breakwater.engine.tasks import stop_task

log = logging.getLogger("breakwater.access")

_MESSAGES = {
    Denial.MISSING: (
        "missing_api_key",
        "No API key: send a Breakwater key as 'Authorization: Bearer <key>' (or 'x-api-key: <key>')",
    ),
    Denial.UNKNOWN: ("invalid_api_key", "Incorrect API key provided"),
    Denial.DISABLED: ("key_disabled", "This API key ({prefix}) is disabled"),
    Denial.REVOKED: ("key_revoked", "This API key ({prefix}) has been revoked"),
    Denial.EXPIRED: ("key_expired", "This API key ({prefix}) has expired"),
    Denial.ROTATED: (
        "key_rotated",
        "This API key ({prefix}) was rotated and its overlap window is over; use the new key",
    ),
    Denial.TEAM_DISABLED: ("team_disabled", "The team of this API key ({prefix}) is disabled"),
}


@dataclass(frozen=True, slots=True)
class _Index:
    """One snapshot, indexed for the request path."""

    #: current and (during a rotation's overlap) previous hashes -> (key, is the previous secret)
    by_hash: Mapping[str, tuple[VirtualKey, bool]] = field(default_factory=dict)
    by_id: Mapping[str, VirtualKey] = field(default_factory=dict)
    teams: Mapping[str, Team] = field(default_factory=dict)
    users: Mapping[str, Limits] = field(default_factory=dict)
    #: ``key=value`` -> limits
    tags: Mapping[str, Limits] = field(default_factory=dict)
    version: int = -1
    source: AccessSnapshot = field(default_factory=lambda: AccessSnapshot([], [], [], -1))

    @classmethod
    def of(cls, snapshot: AccessSnapshot) -> _Index:
        by_hash: dict[str, tuple[VirtualKey, bool]] = {}
        for key in snapshot.keys:
            by_hash[key.hash] = (key, False)
            if key.previous_hash is not None:
                by_hash[key.previous_hash] = (key, True)
        return cls(
            by_hash=by_hash,
            by_id={k.id: k for k in snapshot.keys},
            teams={t.name: t for t in snapshot.teams},
            users={e.subject: e.limits for e in snapshot.limits if e.scope == "user"},
            tags={e.subject: e.limits for e in snapshot.limits if e.scope == "tag"},
            version=snapshot.version,
            source=snapshot,
        )


class Directory:
    """The request path's view of the access store.

    Args:
        store: where keys live (read at start and on changes only).
        secret: the HMAC secret keys are hashed with.
        clock: ``time()`` decides expiry and rotation overlaps.
        reload_s: seconds between version checks.
        watch_s: seconds between checks of the store's change signal (``AccessStore.changed``);
            a signal that moved has the version checked at once. ``None``, or a store without a
            signal: the version is checked every ``reload_s`` only.
    """

    def __init__(
        self,
        store: AccessStore,
        secret: bytes,
        clock: Clock,
        *,
        reload_s: float = 5.0,
        watch_s: float | None = None,
    ) -> None:
        self.store = store
        self._secret = secret
        self._clock = clock
        self._reload_s = reload_s
        self._watch_s: float | None = None
        #: ticks of the background loop between version checks, and ticks since the last one
        self._ticks_per_check = 1
        self._ticks = 0
        if watch_s is not None and watch_s < reload_s:
            self._watch_s = watch_s
            self._ticks_per_check = max(1, round(reload_s / watch_s))
        self._index = _Index()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._lock = asyncio.Lock()
        #: refused credentials by reason (``missing_api_key``, ``invalid_api_key``, ``key_revoked``, ...)
        self.refusals: Counter[str] = Counter()

    @property
    def loaded(self) -> bool:
        """A snapshot has been read: keys can be checked."""
        return self._index.version >= 0

    @property
    def version(self) -> int:
        return self._index.version

    # --- the request path -------------------------------------------------------------------

    def authenticate(self, credential: str | None) -> tuple[VirtualKey, Team | None]:
        """The key behind ``credential`` and its team.

        Raises:
            AuthenticationFailed: missing, unknown, disabled, revoked, expired or rotated key,
                or a disabled team; the message names the key by its prefix, never whole.
            BackendUnavailable: no snapshot has been loaded yet.
        """
        if not credential:
            raise self._refusal(Denial.MISSING, "")
        index = self._index
        if index.version < 0:
            raise BackendUnavailable("The key store has not been read yet; retry shortly", code="keys_unavailable")
        found = index.by_hash.get(hash_key(credential, self._secret)) if looks_like_key(credential) else None
        if found is None:
            raise self._refusal(Denial.UNKNOWN, "")
        key, previous = found
        team = index.teams.get(key.team) if key.team else None
        denial = authorize(key, None, self._clock.time(), previous=previous, team=team)
        if denial is not None:
            raise self._refusal(denial, key.previous_prefix if previous and key.previous_prefix else key.prefix)
        return key, team

    def authenticate_id(self, key_id: str) -> tuple[VirtualKey, Team | None]:
        """The key with id ``key_id`` and its team, checked like a credential (work done later on
        a key's behalf, such as a batch's lines, stops when the key is revoked, expired or disabled).

        Raises:
            AuthenticationFailed: unknown, disabled, revoked or expired key, or a disabled team.
            BackendUnavailable: no snapshot has been loaded yet.
        """
        index = self._index
        if index.version < 0:
            raise BackendUnavailable("The key store has not been read yet; retry shortly", code="keys_unavailable")
        key = index.by_id.get(key_id)
        if key is None:
            raise self._refusal(Denial.UNKNOWN, "")
        team = index.teams.get(key.team) if key.team else None
        denial = authorize(key, None, self._clock.time(), team=team)
        if denial is not None:
            raise self._refusal(denial, key.prefix)
        return key, team

    def _refusal(self, denial: Denial, prefix: str) -> AuthenticationFailed:
        code, message = _MESSAGES[denial]
        self.refusals[code] += 1
        return AuthenticationFailed(message.format(prefix=prefix), code=code)

    @staticmethod
    def check_route(key: VirtualKey, route: str) -> None:
        """Raises ``PermissionDenied`` (403) when ``key`` may not call ``route``."""
        if not key.allows_route(route):
            raise PermissionDenied(
                f"This API key ({key.prefix}) may not use model '{route}'; it may use: {', '.join(key.routes)}",
                param="model",
                code="model_not_allowed",
            )

    def user_limits(self, user: str) -> tuple[str, Limits] | None:
        """The limits that apply to ``user``: their own entry, else the ``*`` entry; with the
        subject the counters are kept under (the user; each user counts separately under ``*``)."""
        users = self._index.users
        limits = users.get(user) or users.get(EVERY_USER)
        return None if limits is None else (user, limits)

    def tag_limits(self, tags: Mapping[str, str]) -> list[tuple[str, Limits]]:
        """``(key=value, limits)`` for each of the request's tags that has limits."""
        known = self._index.tags
        if not known or not tags:
            return []
        found = []
        for k, v in tags.items():
            subject = f"{k}={v}"
            limits = known.get(subject)
            if limits is not None:
                found.append((subject, limits))
        return found

    # --- admin reads ------------------------------------------------------------------------

    def snapshot(self) -> AccessSnapshot:
        """The records as last loaded."""
        return self._index.source

    def key(self, key_id: str) -> VirtualKey | None:
        return self._index.by_id.get(key_id)

    def keys(self) -> list[VirtualKey]:
        return list(self._index.by_id.values())

    def team(self, name: str) -> Team | None:
        return self._index.teams.get(name)

    def teams(self) -> list[Team]:
        return list(self._index.teams.values())

    def subject_limits(self) -> list[SubjectLimits]:
        index = self._index
        return [SubjectLimits("user", s, lim) for s, lim in index.users.items()] + [
            SubjectLimits("tag", s, lim) for s, lim in index.tags.items()
        ]

    # --- keeping it current -----------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> bool:
        """Read the store again if its version moved (or ``force``); True when the snapshot changed.

        Raises:
            whatever the store raises; the background loop logs and retries.
        """
        async with self._lock:
            if not force and self.loaded and await self.store.version() == self._index.version:
                return False
            self._index = _Index.of(await self.store.snapshot())
            return True

    async def check(self, *, woken: bool = False) -> bool:
        """One tick of the background loop: check the version if ``woken``, if ``reload_s`` worth
        of ticks passed since the last check, or if the store's change signal moved; reload if the
        version moved. True when the snapshot changed.

        Ticks are counted rather than timed, so the decision needs no clock: the loop waits
        ``watch_s`` between ticks (``reload_s`` without a change signal).

        Raises:
            whatever the store raises; the background loop logs and retries.
        """
        self._ticks += 1
        due = woken or not self.loaded or self._ticks >= self._ticks_per_check
        if not due and self._watch_s is not None:
            moved = await self.store.changed()
            if moved is None:  # the store cannot tell: the version poll alone, every reload_s
                self._watch_s, self._ticks_per_check = None, 1
            due = bool(moved)
        if not due:
            return False
        self._ticks = 0
        return await self.refresh()

    def _tick_s(self) -> float:
        """How long the background loop waits between ticks (unless woken)."""
        tick = self._reload_s if self._watch_s is None else self._watch_s
        return tick if self.loaded else min(tick, 1.0)

    def invalidate(self) -> None:
        """Another replica changed the store: check it now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-access-reload")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick_s()):
                    await self._wake.wait()
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                changed = await self.check(woken=woken)
            except Exception as exc:  # noqa: BLE001 - a store outage must not stop the loop; the last snapshot serves
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "key store unreachable (%s); serving the keys loaded at version %d",
                        type(exc).__name__,
                        self._index.version,
                    )
                continue
            if self._failing:
                self._failing = False
                log.info("key store reachable again (version %d)", self._index.version)
            if changed:
                log.info("access snapshot reloaded (version %d)", self._index.version)
