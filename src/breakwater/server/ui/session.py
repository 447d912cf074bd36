"""Dashboard sessions: a signed cookie, and the CSRF token bound to it.

A session is ``<id>.<expiry>.<mac>``: a random id, its expiry in unix seconds, and an
HMAC-SHA256 of both under a key derived from the admin key (``AdminAuth.derive``). Nothing is
kept server side, so every worker of a gateway started with ``--workers N`` accepts the cookie
another one issued, and changing the admin key ends every session at once.

Logging out deletes the cookie in the browser and remembers the id as revoked in this process
until it expires; a copy of the cookie taken before the logout would still be accepted by the
other workers until its expiry (``SESSION_S``).

With access control off and no admin key (the local quick start) there is no key to derive
from: the process draws a random one when it starts, so a session (still needed for its CSRF
token) lasts as long as the process, and each worker issues its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

SESSION_S = 12 * 3600.0
"""How long a dashboard session lasts after login."""

COOKIE = "bw_ui"
"""The session cookie's name (path ``/ui``)."""

KEY_LABEL = b"breakwater-ui-session-v1"
"""What the session key is derived from the admin key for (``AdminAuth.derive``)."""


@dataclass(frozen=True, slots=True)
class Session:
    """A valid session: its id and expiry, and the CSRF token its forms carry."""

    id: str
    expires: float
    csrf: str


class Sessions:
    """Issues, reads and revokes sessions; one per process (it outlives configuration reloads).

    Args:
        now: the wall clock (unix seconds).
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._process_key = secrets.token_bytes(32)
        #: ids logged out in this process -> their expiry (dropped once expired)
        self._revoked: dict[str, float] = {}

    def issue(self, key: bytes | None) -> tuple[Session, str]:
        """A new session and its cookie value, signed with ``key`` (derived from the admin key
        with ``KEY_LABEL``; ``None``: the process's own key)."""
        sid = secrets.token_urlsafe(18)
        expires = int(self._now() + SESSION_S)
        body = f"{sid}.{expires}"
        return self._session(key, sid, float(expires)), f"{body}.{self._mac(key, body.encode())}"

    def read(self, key: bytes | None, cookie: str | None) -> Session | None:
        """The session a cookie value holds, or ``None`` when it is absent, forged, expired or revoked."""
        if not cookie or len(cookie) > 256:
            return None
        sid, _, rest = cookie.partition(".")
        expiry, _, mac = rest.partition(".")
        if not sid or not expiry.isdigit() or not mac:
            return None
        if not hmac.compare_digest(mac, self._mac(key, f"{sid}.{expiry}".encode())):
            return None
        now = self._now()
        if int(expiry) <= now or sid in self._revoked:
            return None
        return self._session(key, sid, float(expiry))

    def revoke(self, session: Session) -> None:
        """Refuse ``session`` from now on in this process."""
        now = self._now()
        for sid, expires in list(self._revoked.items()):
            if expires <= now:
                del self._revoked[sid]
        self._revoked[session.id] = session.expires

    def _session(self, key: bytes | None, sid: str, expires: float) -> Session:
        return Session(sid, expires, self._mac(key, b"csrf:" + sid.encode()))

    def _mac(self, key: bytes | None, data: bytes) -> str:
        digest = hmac.new(self._process_key if key is None else key, data, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
