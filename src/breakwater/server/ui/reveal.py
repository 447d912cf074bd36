"""One-time slots for a new key's secret, between the form that made it and the page that shows it.

Creating or rotating a key is a POST; answering it with the secret would let the browser's
reload post the form again and make another key. So the POST keeps what the page is to show in
a slot bound to the session, and redirects (303) to ``/ui/keys?created=<token>``; that GET takes
the slot, which shows the secret once. The same URL again, a token that expired, or one another
session holds, shows no secret (and another session's GET leaves the slot in place).

The slots are in this process's memory (``UiShared``): never written anywhere, never logged,
forgotten after ``TTL_S`` and bounded by ``MAX_SLOTS`` (the oldest dropped first). With
``breakwater serve --workers N`` the browser follows the redirect on the connection it posted
on, so to the same worker; a proxy that spreads one browser's requests over the workers can send
the GET to another, which has no slot: the page then says the secret is not shown again, and
rotating the key makes a new one.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TTL_S = 300.0
"""How long a slot waits for its page."""

MAX_SLOTS = 256
"""The most slots kept at once (the oldest dropped first)."""


@dataclass(frozen=True, slots=True)
class _Slot:
    session_id: str
    expires: float
    shown: dict[str, Any]


class Reveals:
    """Keeps what a page is to show once, for one session, under an unguessable token.

    Args:
        now: the wall clock (unix seconds; the process's injected clock).
        ttl_s: how long a slot is kept.
        max_slots: the most slots kept.
    """

    def __init__(self, now: Callable[[], float], *, ttl_s: float = TTL_S, max_slots: int = MAX_SLOTS) -> None:
        self._now = now
        self._ttl_s = ttl_s
        self._max = max_slots
        self._slots: OrderedDict[str, _Slot] = OrderedDict()

    def __len__(self) -> int:
        """The slots kept now (expired ones included until the next ``keep`` or ``take``)."""
        return len(self._slots)

    def keep(self, session_id: str, shown: dict[str, Any]) -> str:
        """Keep ``shown`` for ``session_id``; the token its page takes it with."""
        self._forget_expired()
        token = secrets.token_urlsafe(18)
        self._slots[token] = _Slot(session_id, self._now() + self._ttl_s, shown)
        while len(self._slots) > self._max:
            self._slots.popitem(last=False)
        return token

    def take(self, session_id: str, token: str) -> dict[str, Any] | None:
        """What ``token`` holds for ``session_id``, once; ``None`` when it was taken, expired,
        never existed, or belongs to another session (whose slot is left in place)."""
        self._forget_expired()
        slot = self._slots.get(token)
        if slot is None or slot.session_id != session_id:
            return None
        del self._slots[token]
        return slot.shown

    def _forget_expired(self) -> None:
        # slots are kept in the order they were made, all with the same lifetime: the expired
        # ones are at the front
        now = self._now()
        while self._slots:
            token, slot = next(iter(self._slots.items()))
            if slot.expires > now:
                break
            del self._slots[token]
