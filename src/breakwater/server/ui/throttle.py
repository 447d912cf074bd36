"""The login throttle: failed dashboard logins from one client address lock it out for a while.

The admin key is a high-entropy secret, so guessing it is hopeless; this is defence in depth,
and it keeps a script that hammers ``POST /ui/login`` from filling the logs. ``FAILURES``
wrong keys from one address within ``WINDOW_S`` lock that address out until ``WINDOW_S`` after
the last of them: every login it then sends, right or wrong, is refused without the key being
looked at. A successful login forgets the address's failures.

The counts are this process's (they outlive configuration reloads, in ``UiShared``): with
``breakwater serve --workers N`` each worker counts on its own, so an address may try up to
``N * FAILURES`` keys a window. Redis is not used: the limit counters live in the access layer,
which exists only with access control on and is rebuilt by a reload, and they have no way to
forget a count on success; the per-process count needs neither.

The address is the one the ASGI server reports (the TCP peer): ``X-Forwarded-For`` is not
trusted, since the gateway has no setting naming trusted proxies. Behind a proxy every client
shares the proxy's address, so there the operator may lock themselves out for a window by
mistyping; that is the price of not letting a header choose the bucket.

At most ``MAX_CLIENTS`` addresses are tracked; past that the one touched longest ago is
forgotten, so a flood from many addresses holds memory bounded (and costs each of those
addresses nothing but its own lock).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

FAILURES = 5
"""Failed logins from one address within ``WINDOW_S`` that lock it out."""

WINDOW_S = 300.0
"""The window failures are counted in, and how long a lock lasts after the last failure."""

MAX_CLIENTS = 10_000
"""The most client addresses tracked at once (the one touched longest ago is dropped)."""


@dataclass(slots=True)
class _Client:
    """One address: its recent failures (unix seconds, oldest first) and when its lock ends."""

    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed logins per client address and says when an address is locked out.

    Args:
        now: the wall clock (unix seconds; the process's injected clock).
        failures: failed logins within ``window_s`` that lock an address out.
        window_s: the counting window, and the lock's length after the last failure.
        max_clients: the most addresses tracked.
    """

    def __init__(
        self,
        now: Callable[[], float],
        *,
        failures: int = FAILURES,
        window_s: float = WINDOW_S,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if failures < 1 or window_s <= 0 or max_clients < 1:
            raise ValueError("failures and max_clients must be at least 1, window_s above 0")
        self._now = now
        self.failures = failures
        self.window_s = window_s
        self._max = max_clients
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def __len__(self) -> int:
        """The addresses tracked now."""
        return len(self._clients)

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again, or ``None`` when it is not locked out."""
        entry = self._clients.get(client)
        if entry is None:
            return None
        now = self._now()
        if entry.locked_until > now:
            return max(1, math.ceil(entry.locked_until - now))
        if entry.locked_until:  # the lock has passed: start counting afresh
            del self._clients[client]
        return None

    def failed(self, client: str) -> int | None:
        """Count a failed login from ``client``; the lock's length in whole seconds when this
        failure locks it out, else ``None``."""
        now = self._now()
        entry = self._clients.pop(client, None) or _Client()
        self._clients[client] = entry  # (re)inserted last: the most recently touched
        entry.failures = [t for t in entry.failures if t > now - self.window_s]
        entry.failures.append(now)
        while len(self._clients) > self._max:
            self._clients.popitem(last=False)
        if len(entry.failures) < self.failures:
            return None
        entry.failures.clear()
        entry.locked_until = now + self.window_s
        return math.ceil(self.window_s)

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures: it knows the key."""
        self._clients.pop(client, None)
