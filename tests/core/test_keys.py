"""Virtual keys: format, keyed hash, and the authorization decision at a given time."""

from __future__ import annotations

import dataclasses

import pytest

from breakwater.core.keys import Denial, Team, VirtualKey, authorize, hash_key, key_prefix, looks_like_key, new_key

SECRET = b"server-side hash secret"


def test_keys_are_random_urlsafe_and_recognisable() -> None:
    """Keys are bw- plus 43 URL-safe characters from the injected randomness; other shapes are not keys."""
    a, b = new_key(), new_key()
    assert a != b and looks_like_key(a) and looks_like_key(b)
    assert a.startswith("bw-") and len(a) == 46
    assert set(a[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert new_key(lambda n: bytes(n)) == "bw-" + "A" * 43  # randomness is injected
    assert not looks_like_key("sk-" + a[3:]) and not looks_like_key(a[:-1]) and not looks_like_key("")


def test_the_stored_hash_is_keyed_and_reveals_nothing() -> None:
    """The stored hash depends on the secret and contains no part of the key; the prefix is its start."""
    key = new_key()
    stored = hash_key(key, SECRET)
    assert stored == hash_key(key, SECRET) and len(stored) == 64
    assert stored != hash_key(key, b"another deployment's secret")
    assert key not in stored and key[3:] not in stored
    assert key_prefix(key) == key[:11] and key.startswith(key_prefix(key))


KEY = VirtualKey(id="k1", prefix="bw-abcdefgh", hash="h", created_at=100.0)


@pytest.mark.parametrize(
    ("changes", "route", "now", "expected"),
    [
        ({}, "fast", 150.0, None),
        ({"revoked_at": 120.0}, "fast", 150.0, Denial.REVOKED),
        ({"revoked_at": 200.0}, "fast", 150.0, None),  # revocation scheduled later
        ({"disabled": True}, "fast", 150.0, Denial.DISABLED),
        ({"expires_at": 150.0}, "fast", 149.9, None),
        ({"expires_at": 150.0}, "fast", 150.0, Denial.EXPIRED),
        ({"routes": ("fast", "openai/*")}, "fast", 150.0, None),
        ({"routes": ("fast", "openai/*")}, "openai/gpt-4o", 150.0, None),
        ({"routes": ("fast", "openai/*")}, "slow", 150.0, Denial.ROUTE),
        ({"routes": ("fast",)}, None, 150.0, None),  # no route named: listing models
    ],
)
def test_authorize(changes: dict[str, object], route: str | None, now: float, expected: Denial | None) -> None:
    """Revoked, disabled, expired and route-restricted keys are refused at the right moments."""
    assert authorize(dataclasses.replace(KEY, **changes), route, now) is expected  # type: ignore[arg-type]


def test_an_unknown_key_is_refused() -> None:
    """No record for the presented key: unknown."""
    assert authorize(None, "fast", 0.0) is Denial.UNKNOWN


ROTATED = dataclasses.replace(KEY, previous_prefix="bw-old00000", previous_hash="h0", previous_until=160.0)


@pytest.mark.parametrize(
    ("previous", "now", "expected"),
    [
        (True, 159.0, None),  # the replaced secret, inside the overlap window
        (True, 160.0, Denial.ROTATED),  # after it
        (False, 500.0, None),  # the new secret is not bound by the overlap
    ],
)
def test_a_rotated_secret_works_for_the_overlap_only(previous: bool, now: float, expected: Denial | None) -> None:
    """The secret a rotation replaced is accepted until ``previous_until``; the new one regardless."""
    assert authorize(ROTATED, "fast", now, previous=previous) is expected


def test_expiry_and_team_apply_to_both_secrets() -> None:
    """An expired key is expired whichever secret is shown; a disabled team stops its keys."""
    expired = dataclasses.replace(ROTATED, expires_at=155.0)
    assert authorize(expired, "fast", 156.0, previous=True) is Denial.EXPIRED
    assert authorize(KEY, "fast", 150.0, team=Team("search", disabled=True)) is Denial.TEAM_DISABLED
    assert authorize(KEY, "fast", 150.0, team=Team("search")) is None
