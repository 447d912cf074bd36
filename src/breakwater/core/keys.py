"""Virtual API keys: their format, their keyed hash, and whether one may call a route.

A key is ``bw-`` followed by 43 URL-safe characters (32 random bytes). It is shown once, when
created; what is stored is ``HMAC-SHA256(hash_secret, key)``, so a copy of the key table is
useless without the secret that lives outside the database (env or file), and a lookup is one
hash and one dictionary read. ``prefix`` (``bw-`` and the first 8 characters) names a key in
lists, logs and the audit trail without revealing it.

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

KEY_PREFIX = "bw-"
_KEY_BYTES = 32
_PREFIX_CHARS = len(KEY_PREFIX) + 8
#: base64url of 32 bytes, unpadded
_KEY_LENGTH = len(KEY_PREFIX) + 43


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
    ROUTE = "route_not_allowed"


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """One key as stored (never the key itself).

    ``routes`` empty means every route. ``valid_until`` ends a key's life: its expiry, or the
    end of the overlap window after it was rotated, whichever is set first.
    """

    id: str
    prefix: str
    hash: str
    user: str = ""
    team: str = ""
    routes: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    expires_at: float | None = None
    #: set when rotated: the old key keeps working until then
    rotated_until: float | None = None
    revoked_at: float | None = None
    disabled: bool = False

    @property
    def valid_until(self) -> float | None:
        ends = [t for t in (self.expires_at, self.rotated_until) if t is not None]
        return min(ends) if ends else None

    def allows_route(self, route: str) -> bool:
        if not self.routes:
            return True
        for allowed in self.routes:
            if allowed == route or (allowed.endswith("/*") and route.startswith(allowed[:-1])):
                return True
        return False


def authorize(key: VirtualKey | None, route: str | None, now: float) -> Denial | None:
    """``None`` when ``key`` may call ``route`` at ``now`` (``route=None``: any route, e.g. listing models)."""
    if key is None:
        return Denial.UNKNOWN
    if key.revoked_at is not None and key.revoked_at <= now:
        return Denial.REVOKED
    if key.disabled:
        return Denial.DISABLED
    until = key.valid_until
    if until is not None and now >= until:
        return Denial.EXPIRED
    if route is not None and not key.allows_route(route):
        return Denial.ROUTE
    return None
