"""Sticky assignment of a subject (user, key, session, a header's value) to one of a route's arms.

Weighted rendezvous hashing: each arm scores the subject ``weight / -ln(u)``, with ``u`` in
(0, 1) from a 64-bit BLAKE2b hash of the subject keyed by the route and the arm, and the highest
score wins. An arm is chosen with probability ``weight / total``, and the choice is monotone in
every weight: raising one arm's weight only moves subjects *into* it (no other arm's score
changes), lowering it only moves subjects out, an arm added at weight 0 moves nobody, and the
routes' assignments are independent of one another (the route is in the key).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

_SCALE = 2.0**-64


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant, compiled: its name, the route that serves it, its weight, and the prompt
    version its requests get (``None``: whatever the request or its route names)."""

    name: str
    route: str
    weight: float
    prompt: tuple[str, int] | None = None


class Assigner:
    """A route's arms and the hash state that picks one per subject.

    Args:
        route: the route's name (keys the hash: other routes' canaries are independent).
        arms: in config order (a tie, practically impossible, goes to the first).
    """

    __slots__ = ("_hashers", "arms", "route")

    def __init__(self, route: str, arms: tuple[Arm, ...]) -> None:
        self.route = route
        self.arms = arms
        key = hashlib.blake2b(route.encode(), digest_size=32).digest()  # any route name fits the key size
        self._hashers = tuple(
            (arm, hashlib.blake2b(arm.name.encode() + b"\0", key=key, digest_size=8)) for arm in arms if arm.weight > 0
        )

    def assign(self, subject: str) -> Arm:
        """The subject's arm: the same for the same subject while the weights hold."""
        best, best_score = self._hashers[0][0], -1.0
        for arm, hasher in self._hashers:
            score = arm.weight / -math.log(_unit(hasher, subject))
            if score > best_score:
                best, best_score = arm, score
        return best


def _unit(hasher: hashlib.blake2b, subject: str) -> float:
    h = hasher.copy()
    h.update(subject.encode())
    return (int.from_bytes(h.digest(), "big") + 0.5) * _SCALE
