"""The vocabulary of the ``Counters`` port: capped counters that every limit and budget shares.

One mechanism admits a request against all of its limits at once (``engine/limits/quota.py``), over
one of two backends with the same behaviour (``infra/counters/``): process memory, or Redis,
where an atomic script makes the counts exact across replicas and worker processes.

Two kinds of check, admitted together or not at all:

- ``Window``: a count over a sliding window of ``buckets`` slots. The caller names the current
  slot (``slot``); the count is the sum of slots ``slot - buckets + 1 .. slot``, older slots are
  forgotten. Requests and tokens per minute use 60 one-second slots (``slot = floor(now)``),
  so a minute's count is exact to the second and never admits more than ``limit`` in any 60
  seconds. A budget or a session uses one slot (0) of a key that names its calendar period.
  Admission is ``count + amount <= limit``; with ``below`` it is ``count < limit`` (budgets:
  admitted while under the cap, so concurrent requests overshoot it by at most one request).
- ``CounterLease``: a set of held tokens with expiry times (concurrency): admitted while fewer than
  ``limit`` unexpired tokens are held. The expiry bounds what a crashed replica can leak.

Settlement changes a slot by a delta (``Adjust``: real usage minus the reservation) and gives
leases back (``Release``). A negative delta only applies to a slot that still exists, so a
settlement that arrives after its window has moved on changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding-window (or single-slot) count capped at ``limit``."""

    key: str
    limit: int
    #: added to the current slot when admitted (0 only reads)
    amount: int
    #: the current slot's number; slots ``slot - buckets + 1 .. slot`` are counted
    slot: int
    buckets: int = 1
    #: the backend may forget the key this long after its last write
    ttl_s: int = 120
    #: admit while ``count < limit`` (budgets) instead of ``count + amount <= limit``
    below: bool = False


@dataclass(frozen=True, slots=True)
class CounterLease:
    """A lease on one token in a shared set of at most ``limit`` live tokens (a concurrency cap)."""

    key: str
    limit: int
    token: str
    #: unix seconds after which the token no longer counts, released or not
    expires_at: float


Check = Window | CounterLease


# Readings and verdicts are made on every admission: plain slotted classes, which cost a third of
# what frozen ones do to build.
@dataclass(slots=True)
class Reading:
    """A check's state after the call.

    ``count`` includes the amount when the set was admitted (else it is the count before).
    ``oldest`` is the oldest slot still counted (``None``: an empty window, or a lease set);
    the window's count next falls when that slot leaves it. ``fits_at`` (a refused window only)
    is the first slot at which enough will have left the window for the amount to fit.
    """

    count: int
    oldest: int | None = None
    fits_at: int | None = None


@dataclass(slots=True)
class Verdict:
    """The outcome of one ``acquire``: one reading per check, in order."""

    admitted: bool
    readings: tuple[Reading, ...]
    #: the first check that refused (``None`` when admitted)
    refused: int | None = None


@dataclass(frozen=True, slots=True)
class Adjust:
    """Add ``delta`` to ``slot`` of a window key (a negative delta only to an existing slot)."""

    key: str
    slot: int
    delta: int
    ttl_s: int = 120


@dataclass(frozen=True, slots=True)
class Release:
    """Give a lease token back."""

    key: str
    token: str


class CountersUnavailable(Exception):
    """The counter backend did not answer in time or at all; the caller falls back to local counters."""
