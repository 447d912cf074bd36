"""One-time slots for a new key's secret (server/ui/reveal.py): taken once, by its own session
only, forgotten after their lifetime, and bounded in number."""

from __future__ import annotations

from breakwater.server.ui.reveal import TTL_S, Reveals


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


SHOWN = {"action": "created", "key": {"name": "k"}, "secret": "bw-secret"}


def test_a_slot_is_taken_once() -> None:
    """The session that kept the slot takes it once; the same token again gives nothing."""
    reveals = Reveals(Clock(1_800_000_000.0))
    token = reveals.keep("s1", SHOWN)
    assert reveals.take("s1", token) == SHOWN
    assert reveals.take("s1", token) is None
    assert len(reveals) == 0


def test_another_session_gets_nothing_and_leaves_the_slot() -> None:
    """A token taken with another session's id shows nothing, and its own session still takes it."""
    reveals = Reveals(Clock(1_800_000_000.0))
    token = reveals.keep("s1", SHOWN)
    assert reveals.take("s2", token) is None
    assert reveals.take("s1", token) == SHOWN


def test_a_slot_expires() -> None:
    """A slot not taken within its lifetime is gone."""
    clock = Clock(1_800_000_000.0)
    reveals = Reveals(clock)
    token = reveals.keep("s1", SHOWN)
    clock.now += TTL_S
    assert reveals.take("s1", token) is None
    assert len(reveals) == 0


def test_tokens_are_unguessable_and_distinct() -> None:
    """Each slot has its own long random token; an unknown one gives nothing."""
    reveals = Reveals(Clock(1_800_000_000.0))
    tokens = {reveals.keep("s1", SHOWN) for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 24 for t in tokens)
    assert reveals.take("s1", "not-a-token") is None


def test_the_slots_kept_are_bounded() -> None:
    """Past ``max_slots`` the oldest slots are dropped; the newest are still taken."""
    reveals = Reveals(Clock(1_800_000_000.0), max_slots=10)
    tokens = [reveals.keep("s1", {"n": i}) for i in range(100)]
    assert len(reveals) == 10
    assert reveals.take("s1", tokens[0]) is None
    assert reveals.take("s1", tokens[-1]) == {"n": 99}
