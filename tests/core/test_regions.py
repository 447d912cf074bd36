"""Data residency's arithmetic: which regions a restriction allows, and how restrictions meet."""

from __future__ import annotations

import pytest

from breakwater.core.regions import allows, describe, narrow


@pytest.mark.parametrize(
    ("allowed", "region", "expected"),
    [
        (None, None, True),  # unrestricted: anywhere, even a deployment that declares nothing
        (None, "us", True),
        (frozenset({"eu"}), "eu", True),
        (frozenset({"eu"}), "eu-west-1", True),  # a prefix on a dash covers the regions under it
        (frozenset({"eu"}), "europe", False),  # not a dash boundary
        (frozenset({"eu-west-1"}), "eu", False),  # narrower does not allow wider
        (frozenset({"eu"}), None, False),  # a deployment without a region: fails closed
        (frozenset(), "eu", False),  # restrictions that do not meet allow nothing
        (frozenset({"eu", "ch"}), "ch", True),
    ],
)
def test_allows(allowed: frozenset[str] | None, region: str | None, expected: bool) -> None:
    assert allows(allowed, region) is expected


def test_restrictions_meet_at_the_narrower_region() -> None:
    assert narrow(None, None) is None
    assert narrow(None, frozenset({"eu"})) == {"eu"}
    assert narrow(frozenset({"eu"}), frozenset({"eu-west-1", "us"})) == {"eu-west-1"}
    assert narrow(frozenset({"eu-west-1"}), frozenset({"eu"})) == {"eu-west-1"}
    assert narrow(frozenset({"eu", "us"}), frozenset({"us"}), None) == {"us"}
    assert narrow(frozenset({"eu"}), frozenset({"us"})) == frozenset()
    assert describe(frozenset()) == "none" and describe(frozenset({"us", "eu"})) == "eu, us"
