"""Admin operations on keys, teams and per-user/per-tag limits: one implementation for the admin
API (``server/admin_keys.py``) and the CLI (``breakwater keys ...``).

Every operation validates its input (the pydantic specs below, so the API and the CLI report
the same problems), writes through the ``AccessStore`` (which audits it in the same
transaction), then makes the change visible: this replica's directory reloads at once and
``announce`` tells the other replicas (Redis pub/sub); replicas without it notice within
0.25 s on a SQLite store (its change signal, ``Directory.check``), within ``access.reload_s``
on PostgreSQL.

A new or rotated key is returned in clear exactly once, by the call that made it; only its
hash is stored.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Collection
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from breakwater.core.errors import InvalidRequest, NotFound
from breakwater.core.keys import (
    EVERY_USER,
    AuditEntry,
    SubjectLimits,
    SubjectScope,
    Team,
    VirtualKey,
    hash_key,
    key_prefix,
    new_key,
)
from breakwater.core.limits import Budget, Limits, Period
from breakwater.core.regions import PATTERN as REGION
from breakwater.engine.access.directory import Directory
from breakwater.engine.access.store import AccessStore, KeyConflict
from breakwater.engine.ports import Clock

log = logging.getLogger("breakwater.access")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$")
_TAG = re.compile(r"^[^=,\s][^=,]{0,63}=[^,]{0,256}$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetSpec(_Spec):
    usd: Decimal = Field(gt=0, allow_inf_nan=False, max_digits=20, decimal_places=9)
    period: Period = "month"


class LimitsSpec(_Spec):
    """Limits as the API takes them; the same shape ``Limits.to_json`` writes."""

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    budget: BudgetSpec | None = None

    def to_limits(self) -> Limits:
        budget = None if self.budget is None else Budget(self.budget.usd, self.budget.period)
        return Limits(self.rpm, self.tpm, self.max_concurrent, budget)


def _tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 16:
        raise ValueError("at most 16 tags")
    for k, v in value.items():
        if not _TAG.match(f"{k}={v}"):
            raise ValueError(f"tag {k!r}: keys are 1-64 characters without '=', ',' or spaces; values up to 256")
    return value


#: up to 16 ``key: value`` tags, as ``x-breakwater-tags`` takes them
Tags = Annotated[dict[str, str], AfterValidator(_tags)]
#: the regions a key's or team's requests may go to (data residency, ``core/regions.py``)
RegionList = Annotated[list[Annotated[str, Field(pattern=REGION)]], Field(max_length=32)]


class KeySpec(_Spec):
    """A new key. ``routes`` empty: every route; ``expires_in_s`` or ``expires_at`` (unix seconds)."""

    name: str = Field(default="", max_length=128)
    user: str = Field(default="", max_length=256)
    team: str = ""
    routes: list[str] = Field(default_factory=list)
    tags: Tags = Field(default_factory=dict)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    expires_at: float | None = Field(default=None, gt=0)
    expires_in_s: float | None = Field(default=None, gt=0)
    #: empty: anywhere
    regions: RegionList = Field(default_factory=list)


class KeyPatch(_Spec):
    """Changes to a key: only the fields given change (``limits`` is replaced as a whole)."""

    name: str | None = Field(default=None, max_length=128)
    user: str | None = Field(default=None, max_length=256)
    team: str | None = None
    routes: list[str] | None = None
    tags: Tags | None = None
    limits: LimitsSpec | None = None
    expires_at: float | None = Field(default=None, gt=0)
    expires_in_s: float | None = Field(default=None, gt=0)
    #: remove the expiry
    no_expiry: bool = False
    #: ``[]`` lifts the restriction
    regions: RegionList | None = None


class TeamSpec(_Spec):
    name: str
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    tags: Tags = Field(default_factory=dict)
    regions: RegionList = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("1-64 letters, digits and _.@:- , starting with a letter or digit")
        return value


class TeamPatch(_Spec):
    limits: LimitsSpec | None = None
    tags: Tags | None = None
    regions: RegionList | None = None


def parse(spec: type[_Spec], data: Any) -> Any:
    """Validate ``data`` into ``spec``; every problem becomes one 400 naming the field.

    Raises:
        InvalidRequest: with ``param`` set to the first bad field's path.
    """
    if not isinstance(data, dict):
        raise InvalidRequest("Expected a JSON object")
    try:
        return spec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "body"
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{where}: {message.removeprefix('Value error, ')}")
        first = ".".join(str(p) for p in exc.errors()[0]["loc"]) or None
        raise InvalidRequest("Invalid request: " + "; ".join(problems), param=first) from None


Announce = Callable[[], Awaitable[None]]


class AccessOperations:
    """Changes to keys, teams and limits, audited and announced.

    Args:
        store: the access store.
        secret: the HMAC secret keys are hashed with.
        clock: timestamps.
        directory: this replica's directory, reloaded after each change (``None`` in the CLI).
        announce: tells the other replicas to reload (``None``: they poll).
        routes: the configured route names (``openai/*`` patterns included) a key may name.
        random_bytes: key material (tests inject it).
    """

    def __init__(
        self,
        store: AccessStore,
        secret: bytes,
        clock: Clock,
        *,
        directory: Directory | None = None,
        announce: Announce | None = None,
        routes: Collection[str] = (),
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.store = store
        self._secret = secret
        self._clock = clock
        self._directory = directory
        self._announce = announce
        self._routes = set(routes)
        self._random = random_bytes

    def set_routes(self, routes: Collection[str]) -> None:
        """The route names keys may name, after a reload changed them."""
        self._routes = set(routes)

    # --- keys -----------------------------------------------------------------------------------

    async def create_key(self, spec: KeySpec, *, actor: str) -> tuple[VirtualKey, str]:
        """A new key; returns its record and the key itself (shown once)."""
        now = self._clock.time()
        await self._check_refs(spec.team, spec.routes)
        record = VirtualKey(
            id="key_" + self._random(8).hex(),
            prefix="",
            hash="",
            name=spec.name,
            user=spec.user,
            team=spec.team,
            routes=tuple(spec.routes),
            tags=dict(spec.tags),
            limits=spec.limits.to_limits(),
            created_at=now,
            expires_at=_expiry(spec.expires_at, spec.expires_in_s, now),
            regions=tuple(spec.regions),
        )
        return await self._with_new_secret(record, lambda key: key, actor, "key.create", now)

    async def key(self, key_id: str) -> VirtualKey:
        """Raises ``NotFound`` (404) for an unknown id."""
        for key in (await self.store.snapshot()).keys:
            if key.id == key_id:
                return key
        raise NotFound(f"No key with id '{key_id}'")

    async def keys(self) -> list[VirtualKey]:
        return (await self.store.snapshot()).keys

    async def update_key(self, key_id: str, patch: KeyPatch, *, actor: str) -> VirtualKey:
        key = await self.key(key_id)
        now = self._clock.time()
        changes: dict[str, Any] = {}
        for name in ("name", "user", "team"):
            value = getattr(patch, name)
            if value is not None:
                changes[name] = value
        if patch.routes is not None:
            changes["routes"] = tuple(patch.routes)
        if patch.tags is not None:
            changes["tags"] = dict(patch.tags)
        if patch.limits is not None:
            changes["limits"] = patch.limits.to_limits()
        if patch.regions is not None:
            changes["regions"] = tuple(patch.regions)
        if patch.no_expiry:
            changes["expires_at"] = None
        elif patch.expires_at is not None or patch.expires_in_s is not None:
            changes["expires_at"] = _expiry(patch.expires_at, patch.expires_in_s, now)
        if not changes:
            raise InvalidRequest("Nothing to change: give at least one field")
        await self._check_refs(changes.get("team", ""), changes.get("routes", ()))
        return await self._save_key(dataclasses.replace(key, **changes), actor, "key.update", now)

    async def set_disabled(self, key_id: str, disabled: bool, *, actor: str) -> VirtualKey:
        key = await self.key(key_id)
        action = "key.disable" if disabled else "key.enable"
        return await self._save_key(dataclasses.replace(key, disabled=disabled), actor, action, self._clock.time())

    async def revoke(self, key_id: str, *, actor: str) -> VirtualKey:
        """Revoke for good (at once); a revoked key cannot be enabled again."""
        key = await self.key(key_id)
        now = self._clock.time()
        if key.revoked_at is not None:
            return key
        return await self._save_key(dataclasses.replace(key, revoked_at=now), actor, "key.revoke", now)

    async def rotate(self, key_id: str, *, overlap_s: float, actor: str) -> tuple[VirtualKey, str]:
        """A new secret for the key; the current one stays valid for ``overlap_s`` seconds
        (a secret an earlier rotation left valid stops at once)."""
        key = await self.key(key_id)
        if key.revoked_at is not None:
            raise InvalidRequest(f"Key '{key_id}' is revoked; create a new key instead")
        if overlap_s < 0:
            raise InvalidRequest("overlap_s must not be negative", param="overlap_s")
        now = self._clock.time()

        def keep_previous(rotated: VirtualKey) -> VirtualKey:
            return dataclasses.replace(
                rotated, previous_prefix=key.prefix, previous_hash=key.hash, previous_until=now + overlap_s
            )

        return await self._with_new_secret(key, keep_previous, actor, "key.rotate", now)

    async def _with_new_secret(
        self, key: VirtualKey, finish: Callable[[VirtualKey], VirtualKey], actor: str, action: str, now: float
    ) -> tuple[VirtualKey, str]:
        """Save ``key`` with a fresh secret; a hash that clashes with another key's (never seen
        with 256 random bits, but the store refuses it) is answered with another secret."""
        for _ in range(3):
            plain = new_key(self._random)
            made = finish(dataclasses.replace(key, prefix=key_prefix(plain), hash=hash_key(plain, self._secret)))
            try:
                await self.store.save_key(made, actor=actor, action=action, now=now)
            except KeyConflict:
                continue
            await self._changed(action, f"key:{made.id}", actor)
            return made, plain
        raise KeyConflict("three fresh keys in a row clashed with stored hashes: is the random source broken?")

    async def _save_key(self, key: VirtualKey, actor: str, action: str, now: float) -> VirtualKey:
        await self.store.save_key(key, actor=actor, action=action, now=now)
        await self._changed(action, f"key:{key.id}", actor)
        return key

    # --- teams ----------------------------------------------------------------------------------

    async def teams(self) -> list[Team]:
        return (await self.store.snapshot()).teams

    async def team(self, name: str) -> Team:
        for team in await self.teams():
            if team.name == name:
                return team
        raise NotFound(f"No team named '{name}'")

    async def create_team(self, spec: TeamSpec, *, actor: str) -> Team:
        if any(t.name == spec.name for t in await self.teams()):
            raise InvalidRequest(f"Team '{spec.name}' exists already", param="name")
        now = self._clock.time()
        team = Team(spec.name, spec.limits.to_limits(), dict(spec.tags), created_at=now, regions=tuple(spec.regions))
        await self.store.save_team(team, actor=actor, action="team.create", now=now)
        await self._changed("team.create", f"team:{team.name}", actor)
        return team

    async def update_team(self, name: str, patch: TeamPatch, *, actor: str) -> Team:
        team = await self.team(name)
        changes: dict[str, Any] = {}
        if patch.limits is not None:
            changes["limits"] = patch.limits.to_limits()
        if patch.tags is not None:
            changes["tags"] = dict(patch.tags)
        if patch.regions is not None:
            changes["regions"] = tuple(patch.regions)
        if not changes:
            raise InvalidRequest("Nothing to change: give limits, tags or regions")
        return await self._save_team(dataclasses.replace(team, **changes), actor, "team.update")

    async def set_team_disabled(self, name: str, disabled: bool, *, actor: str) -> Team:
        team = await self.team(name)
        action = "team.disable" if disabled else "team.enable"
        return await self._save_team(dataclasses.replace(team, disabled=disabled), actor, action)

    async def delete_team(self, name: str, *, actor: str) -> Team:
        """Delete a team no key belongs to."""
        users = [k.id for k in await self.keys() if k.team == name and k.revoked_at is None]
        if users:
            raise InvalidRequest(f"Team '{name}' still has keys ({', '.join(users[:5])}); move or revoke them first")
        deleted = await self.store.delete_team(name, actor=actor, now=self._clock.time())
        if deleted is None:
            raise NotFound(f"No team named '{name}'")
        await self._changed("team.delete", f"team:{name}", actor)
        return deleted

    async def _save_team(self, team: Team, actor: str, action: str) -> Team:
        await self.store.save_team(team, actor=actor, action=action, now=self._clock.time())
        await self._changed(action, f"team:{team.name}", actor)
        return team

    # --- per-user and per-tag limits ------------------------------------------------------------

    async def subject_limits(self) -> list[SubjectLimits]:
        return (await self.store.snapshot()).limits

    async def set_limits(self, scope: str, subject: str, spec: LimitsSpec, *, actor: str) -> SubjectLimits:
        """Limits for a user (``*``: every user without their own) or a tag (``key=value``)."""
        checked = _subject(scope, subject)
        now = self._clock.time()
        entry = SubjectLimits(checked, subject, spec.to_limits(), created_at=now)
        await self.store.save_limits(entry, actor=actor, action="limits.set", now=now)
        await self._changed("limits.set", entry.target, actor)
        return entry

    async def delete_limits(self, scope: str, subject: str, *, actor: str) -> SubjectLimits:
        deleted = await self.store.delete_limits(_subject(scope, subject), subject, actor=actor, now=self._clock.time())
        if deleted is None:
            raise NotFound(f"No limits for {scope} '{subject}'")
        await self._changed("limits.delete", deleted.target, actor)
        return deleted

    async def audit(self, *, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        return await self.store.audit(limit=limit, target=target)

    # --- shared ---------------------------------------------------------------------------------

    async def _check_refs(self, team: str, routes: Collection[str]) -> None:
        if team and not any(t.name == team for t in await self.teams()):
            raise InvalidRequest(f"Unknown team '{team}': create it first", param="team")
        if self._routes:
            unknown = [r for r in routes if r not in self._routes and not _under_wildcard(r, self._routes)]
            if unknown:
                raise InvalidRequest(
                    f"Unknown route '{unknown[0]}' (configured: {', '.join(sorted(self._routes))})", param="routes"
                )

    async def _changed(self, action: str, target: str, actor: str) -> None:
        # the audit trail holds the details; the log says that something changed, and who did it
        log.info("access change %s on %s by %s", action, target, actor, extra={"action": action, "target": target})
        if self._directory is not None:
            await self._directory.refresh(force=True)
        if self._announce is not None:
            await self._announce()


def _expiry(at: float | None, in_s: float | None, now: float) -> float | None:
    if at is not None and in_s is not None:
        raise InvalidRequest("Give expires_at or expires_in_s, not both", param="expires_at")
    if in_s is not None:
        return now + in_s
    if at is not None and at <= now:
        raise InvalidRequest("expires_at is in the past", param="expires_at")
    return at


def _subject(scope: str, subject: str) -> SubjectScope:
    if scope == "user":
        if not subject or len(subject) > 256:
            raise InvalidRequest("A user name is 1-256 characters ('*': every user without limits of their own)")
        return "user"
    if scope == "tag":
        if not _TAG.match(subject):
            raise InvalidRequest("A tag subject is 'key=value'", param="subject")
        return "tag"
    raise InvalidRequest(f"Unknown scope '{scope}': expected user or tag", param="scope")


def _under_wildcard(route: str, routes: Collection[str]) -> bool:
    """``openai/gpt-4o`` is a route when ``openai/*`` is configured."""
    prefix, _, rest = route.partition("/")
    return bool(rest) and f"{prefix}/*" in routes


__all__ = [
    "EVERY_USER",
    "AccessOperations",
    "BudgetSpec",
    "KeyPatch",
    "KeySpec",
    "LimitsSpec",
    "TeamPatch",
    "TeamSpec",
    "parse",
]
