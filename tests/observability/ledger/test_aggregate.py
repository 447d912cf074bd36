"""The usage aggregate's arguments: grouping, tag key, page bounds and the instants a window is given in.

What the aggregate answers, against SQLite and PostgreSQL alike, is in ``test_conformance.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from breakwater.observability.ledger import SqliteLedger
from breakwater.observability.ledger.aggregate import aggregate, parse_by, parse_instant

from .rows import START


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "colour"}, "cannot group"),
        ({"by": "tag"}, "tag key"),
        ({"by": "user", "tag_key": "team"}, "tag key"),
        ({"by": "user", "limit": 0}, "limit"),
        ({"by": "user", "offset": -1}, "offset"),
    ],
)
async def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    """Bad grouping, tag key, limit or offset raise ValueError before touching the store."""
    args: dict[str, object] = {"since": 0.0, "until": 1.0, "limit": 10, "offset": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        await aggregate(SqliteLedger(tmp_path / "x.db"), **args)  # type: ignore[arg-type]
    assert not (tmp_path / "x.db").exists()


def test_parse_by_and_instant() -> None:
    """``tag:<key>`` splits; instants accept unix seconds, durations ago and ISO dates (UTC)."""
    assert parse_by("user") == ("user", None)
    assert parse_by("tag:team") == ("tag", "team")
    for bad in ("tag", "tag:", "user:x", "colour"):
        with pytest.raises(ValueError):
            parse_by(bad)
    now = 1_800_000_000.0
    assert parse_instant("24h", now) == now - 86400
    assert parse_instant("7d", now) == now - 7 * 86400
    assert parse_instant("1700000000", now) == 1_700_000_000.0
    assert parse_instant("2023-11-15", now) == START
    assert parse_instant("2023-11-15T01:00:00+01:00", now) == START
    with pytest.raises(ValueError, match="ISO"):
        parse_instant("yesterday", now)
