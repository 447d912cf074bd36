"""Virtual API keys, teams and per-user/per-tag limits: their records and who may call what.

A key is ``bw-`` followed by 43 URL-safe characters (32 random bytes). It is shown once, when
created; what is stored is ``HMAC-SHA256(hash_secret, key)``, so a copy of the key table is
useless without the secret that lives outside the database (env or file), and a lookup is one
hash and one dictionary read. ``prefix`` (``bw-`` and the first 8 characters) names a key in
lists, logs and the audit trail without revealing it.

Rotation keeps one record: the key gets a new secret (``hash``) and the old one stays valid
until ``previous_until`` (the overlap window), so the key's id, and with it its counters,
budget and ledger history, survive the rotation.

A team groups keys (``VirtualKey.team``) under shared limits and a shared budget. Users and
tags have no record of their own; ``SubjectLimits`` gives one user (or ``*``, every user
without an entry of their own) or one ``key=value`` tag limits and a budget.

Pure: randomness is passed in, time is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from breakwater.core.limits import NO_LIMITS, Limits

KEY_PREFIX = "bw-"
_KEY_BYTES = 32
_PREFIX_CHARS = len(KEY_PREFIX) + 8
#: base64url of 32 bytes, unpadded
_KEY_LENGTH = len(KEY_PREFIX) + 43

#: ``SubjectLimits.subject`` for every user without limits of their own
EVERY_USER = "*"

SubjectScope = Literal["user", "tag"]


def new_key(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A fresh key: ``bw-`` and 256 random bits, URL-safe."""
    return KEY_PREFIX + base64.urlsafe_b64encode(random_bytes(_KEY_BYTES)).rstrip(b"=").decode()


def looks_like_key(text: str) -> bool:
    """Cheap shape check, so garbage is refused without hashing it."""
    return len(text) == _KEY_LENGTH and text.startswith(KEY_PREFIX)


def key_prefix(key: str) -> str:
    """What lists and logs show of a key: ``bw-`` and its first 8 characters."""
    return key[:_PREFIX_CHARS]


def hash_key(key: str, secret: bytes) -> str:
    """The stored form: HMAC-SHA256 under the deployment's hash secret, hex."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


class Denial(Enum):
    """Why a request's key is refused; the server maps each to a status and an OpenAI error."""

    MISSING = "missing"
    UNKNOWN = "unknown"
    DISABLED = "disabled"
    REVOKED = "revoked"
    EXPIRED = "expired"
    #: the secret was replaced by a rotation and its overlap window is over
    ROTATED = "rotated"
    TEAM_DISABLED = "team_disabled"
    ROUTE = "route_not_allowed"


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """One key as stored (never the key itself).

    ``routes`` empty means every route; ``prefix/*`` allows every model under a wildcard route.
    """

    id: str
    prefix: str
    hash: str
    name: str = ""
    #: the owner: requests made with the key are this user's (``x-breakwater-user`` cannot
    #: override it); empty for a service key, whose callers may name their end users
    user: str = ""
    team: str = ""
    routes: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    limits: Limits = NO_LIMITS
    created_at: float = 0.0
    expires_at: float | None = None
    revoked_at: float | None = None
    disabled: bool = False
    #: the secret a rotation replaced, valid until ``previous_until``
    previous_prefix: str | None = None
    previous_hash: str | None = None
    previous_until: float | None = None
    #: the regions the key's requests may go to (data residency, ``core/regions.py``); empty: anywhere
    regions: tuple[str, ...] = ()

    def allows_route(self, route: str) -> bool:
        if not self.routes:
            return True
        for allowed in self.routes:
            if allowed == route or (allowed.endswith("/*") and route.startswith(allowed[:-1])):
                return True
        return False

    def status(self, now: float) -> str:
        """``revoked``, ``disabled``, ``expired``, ``rotating`` (a replaced secret still valid) or ``active``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.disabled:
            return "disabled"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        if self.previous_until is not None and now < self.previous_until:
            return "rotating"
        return "active"

    def view(self, now: float) -> dict[str, Any]:
        """The key as the admin API and the CLI show it: ``public()`` and its status now."""
        return {"object": "key", **self.public(), "status": self.status(now)}

    def public(self) -> dict[str, Any]:
        """The record as the admin API, the CLI and the audit trail show it: no hashes."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "user": self.user,
            "team": self.team,
            "routes": list(self.routes),
            "tags": dict(self.tags),
            "limits": self.limits.to_json(),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "disabled": self.disabled,
            "previous_prefix": self.previous_prefix,
            "previous_until": self.previous_until,
            "regions": list(self.regions),
        }


@dataclass(frozen=True, slots=True)
class Team:
    """Keys grouped under shared limits and a shared budget; disabling a team stops all its keys."""

    name: str
    limits: Limits = NO_LIMITS
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    disabled: bool = False
    #: the regions its keys' requests may go to (data residency); empty: anywhere
    regions: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "limits": self.limits.to_json(),
            "tags": dict(self.tags),
            "created_at": self.created_at,
            "disabled": self.disabled,
            "regions": list(self.regions),
        }


@dataclass(frozen=True, slots=True)
class SubjectLimits:
    """Limits for one user (``subject`` the user name, or ``*`` for every other user) or one
    tag (``subject`` is ``key=value``)."""

    scope: SubjectScope
    subject: str
    limits: Limits = NO_LIMITS
    created_at: float = 0.0

    @property
    def target(self) -> str:
        """The audit trail's name for it."""
        return f"limits:{self.scope}:{self.subject}"

    def public(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "subject": self.subject,
            "limits": self.limits.to_json(),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action: who, what, on which record, the record before and after (never a secret)."""

    seq: int
    ts: float
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True, slots=True)
class AccessSnapshot:
    """Everything the request path needs to authenticate and limit, read from the store at once.

    ``version`` grows with every change (the newest audit entry's number), so a replica can
    tell whether its copy is current with one cheap query.
    """

    keys: list[VirtualKey]
    teams: list[Team]
    limits: list[SubjectLimits]
    version: int


def authorize(
    key: VirtualKey | None,
    route: str | None,
    now: float,
    *,
    previous: bool = False,
    team: Team | None = None,
) -> Denial | None:
    """``None`` when ``key`` may call ``route`` at ``now`` (``route=None``: any route, e.g. listing models).

    Args:
        previous: the caller presented the secret a rotation replaced.
        team: the key's team, when it has one.
    """
    if key is None:
        return Denial.UNKNOWN
    if key.revoked_at is not None and key.revoked_at <= now:
        return Denial.REVOKED
    if key.disabled:
        return Denial.DISABLED
    if key.expires_at is not None and now >= key.expires_at:
        return Denial.EXPIRED
    if previous and (key.previous_until is None or now >= key.previous_until):
        return Denial.ROTATED
    if team is not None and team.disabled:
        return Denial.TEAM_DISABLED
    if route is not None and not key.allows_route(route):
        return Denial.ROUTE
    return None
